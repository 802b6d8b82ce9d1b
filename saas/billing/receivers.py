"""Signal receivers connected in ``BillingConfig.ready``.

Tenancy sits below billing and must not import it, so billing learns of a new organisation
from ``Organization``'s ``post_save`` rather than being called by tenancy's service.
"""

from __future__ import annotations

from saas.common.actor import Actor
from saas.tenancy.models import Organization

from .services.accounts import billing_account_ensure


def organization_created(sender, instance: Organization, created: bool, raw: bool, **kwargs):
    """Create the new organisation's billing account in the same transaction (``post_save``
    runs inside it), on the plan its ``initial_plan`` code names (free unless the creator set
    it), so every organisation has one and reads never need to create it. The account's
    ``billing_account.created`` is recorded for the system: the signal does not carry who
    created the organisation (its ``organization.created`` event does). Fixture loading
    (``raw``) is left alone: fixtures carry their own rows.

    Raises ValidationFailed for an unknown plan code, which rolls the creation back."""
    if created and not raw:
        billing_account_ensure(
            organization=instance, actor=Actor.system(), plan_code=instance.initial_plan
        )
