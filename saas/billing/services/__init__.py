"""Billing's writes, one module per concern; the reads are in :mod:`saas.billing.selectors`.

- ``accounts``: the account created with the organisation, plan changes, spend cap, Checkout
- ``charges``: pricing a finished training job inside its usage transaction
- ``quotas``: hard quotas and spend caps when work is accepted (``PaymentRequired``): an
  accepted job reserves its estimate (``quota_reserve``) until it ends (``quota_release``),
  and a running one is stopped when it uses up what is left (``quota_exhausted``)
- ``period_close``: the monthly invoice, numbered, pushed to Stripe; ``stripe_push``: that
  push retried with exponential backoff until it succeeds; ``invoices``: emailing it
- ``credits``: credit an operator grants (the append-only credit ledger, drawn down by
  ``period_close``)
- ``storage``: the hourly storage sample
- ``usage_alerts``: 80 % / 100 % emails
- ``stripe_events``: webhook events applied once, in order; ``grace``: dunning

The names below are re-exported so that ``from saas.billing import services as billing`` and
``billing.period_close(...)`` keep working for callers outside billing (jobs, inference, the
dashboard, the workers). Inside billing, import from the concern's module. The training
estimate, which reads job history, is ``saas.jobs.estimates.training_estimate`` (billing does
not import jobs).
"""

from .. import pricing
from ..economics import margins, unit_economics
from ..selectors import (
    METER_LABELS,
    TRAINING_METERS,
    billing_account_get,
    credit_balance,
    job_charge,
    period_charges,
    usage_levels,
    usage_totals,
)
from .accounts import (
    billing_account_ensure,
    billing_account_update,
    billing_plan_change,
    checkout_url,
)
from .charges import training_charge
from .credits import CREDIT_GRANT_MAX, billing_credit_grant, billing_credit_reverse
from .grace import billing_enforce_grace
from .invoices import invoice_recipients, invoice_send
from .period_close import ISSUER, period_close, period_close_all, period_close_previous_month
from .quotas import (
    PaymentRequired,
    billing_check,
    quota_exhausted,
    quota_release,
    quota_reserve,
)
from .storage import storage_sample
from .stripe_events import InvalidStripeEvent, stripe_event_process, stripe_webhook_receive
from .stripe_push import invoice_stripe_push, stripe_push_retry
from .usage_alerts import WARNING_THRESHOLDS, usage_warnings_send, usage_warnings_send_all

__all__ = [
    "CREDIT_GRANT_MAX",
    "ISSUER",
    "METER_LABELS",
    "TRAINING_METERS",
    "WARNING_THRESHOLDS",
    "InvalidStripeEvent",
    "PaymentRequired",
    "billing_account_ensure",
    "billing_account_get",
    "billing_account_update",
    "billing_check",
    "billing_credit_grant",
    "billing_credit_reverse",
    "billing_enforce_grace",
    "billing_plan_change",
    "checkout_url",
    "credit_balance",
    "invoice_recipients",
    "invoice_send",
    "job_charge",
    "margins",
    "unit_economics",
    "period_charges",
    "period_close",
    "period_close_all",
    "period_close_previous_month",
    "pricing",
    "quota_exhausted",
    "quota_release",
    "quota_reserve",
    "storage_sample",
    "stripe_event_process",
    "stripe_push_retry",
    "invoice_stripe_push",
    "stripe_webhook_receive",
    "training_charge",
    "usage_levels",
    "usage_totals",
    "usage_warnings_send",
    "usage_warnings_send_all",
]
