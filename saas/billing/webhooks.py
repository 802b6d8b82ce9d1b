"""Kept so that ``saas.billing.webhooks`` imports outside billing (``workers/tasks.py``) keep
working while other packages move; new code imports from ``saas.billing.services``.

The event handling lives in :mod:`saas.billing.services.stripe_events`, the grace-period
enforcement in :mod:`saas.billing.services.grace`, the HTTP view in ``saas.api.stripe_webhook``.
"""

from .services.grace import billing_enforce_grace
from .services.stripe_events import InvalidStripeEvent, stripe_event_process

__all__ = ["InvalidStripeEvent", "billing_enforce_grace", "stripe_event_process"]
