"""Credit an operator grants an organisation (goodwill, an outage, a sales promise): a ``grant``
entry in the append-only credit ledger, drawn down by period close (:mod:`.period_close`);
and its correction, a ``reversal`` entry taking unused credit back.

Unlike a contract's prepaid balance, ledger credit needs no contract, so self-serve tenants can
hold it too.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.db import transaction

from saas.common.actor import Actor
from saas.common.errors import ValidationFailed
from saas.tenancy.audit import audit_record
from saas.tenancy.models import Organization

from .. import pricing
from ..models import MONEY, CreditLedgerEntry
from ..selectors import billing_currency, credit_balance

# One grant at most: a typo (an extra zero or three) must not hand out a fortune. Larger
# amounts are several grants, each with its reason, or a contract.
CREDIT_GRANT_MAX = Decimal("100000.00")
REASON_MAX = 500
# Characters of an amount given as a string: far more than any real amount needs, and it
# bounds the work a hostile one ("1" × 2 MB) makes the Decimal parser do.
AMOUNT_MAX = 40


def billing_credit_grant(
    *, organization: Organization, amount: Decimal | str, reason: str, actor: Actor
) -> CreditLedgerEntry:
    """Grant ``organization`` ``amount`` of credit in its billing currency (its active
    contract's, else its plan's), for ``reason``.

    ``amount`` is a Decimal, or the string a form sent ("25.00", at most ``AMOUNT_MAX``
    characters once stripped): positive, at most
    ``CREDIT_GRANT_MAX``, with no more decimals than the currency has (at most 2). ``reason``
    (stripped, at most 500 characters) is required. One transaction, under the organisation's
    row lock (the lock period close takes, so the balance audited is exact): the ledger entry
    (``created_by`` = ``actor``'s user) and the audit event ``billing.credit_granted`` with
    the amount, currency, reason and the new balance.

    Raises:
        ValidationFailed: listing every problem at once (field ``amount`` and/or ``reason``);
            nothing is written.
    """
    return _record(
        organization=organization,
        amount=amount,
        reason=reason,
        actor=actor,
        kind=CreditLedgerEntry.Kind.GRANT,
    )


def billing_credit_reverse(
    *, organization: Organization, amount: Decimal | str, reason: str, actor: Actor
) -> CreditLedgerEntry:
    """Take back ``amount`` of ``organization``'s unused credit (an over-grant, a typo): a
    ``reversal`` entry of ``-amount`` in its billing currency, for ``reason``. The ledger
    stays append-only: the grant it corrects remains, and the balance is their sum.

    The same rules as :func:`billing_credit_grant` for ``amount`` and ``reason``, and
    ``amount`` may not exceed the balance (credit already drawn by an invoice is on that
    invoice; a reversal never takes the balance below zero). Audited as
    ``billing.credit_reversed`` with the amount, currency, reason and the new balance.

    Raises:
        ValidationFailed: listing every problem at once; nothing is written.
    """
    return _record(
        organization=organization,
        amount=amount,
        reason=reason,
        actor=actor,
        kind=CreditLedgerEntry.Kind.REVERSAL,
    )


def _record(
    *,
    organization: Organization,
    amount: Decimal | str,
    reason: str,
    actor: Actor,
    kind: CreditLedgerEntry.Kind,
) -> CreditLedgerEntry:
    errors: list[dict] = []
    value = _amount(amount, errors)
    reason = (reason or "").strip()
    if not reason:
        errors.append({"field": "reason", "message": "A reason is required."})
    elif len(reason) > REASON_MAX:
        errors.append(
            {"field": "reason", "message": f"The reason is at most {REASON_MAX} characters."}
        )
    with transaction.atomic():
        org = Organization.objects.select_for_update().get(pk=organization.pk)
        currency = billing_currency(organization=org)
        if value is not None:
            places = min(pricing.currency_places(currency), MONEY["decimal_places"])
            if value != value.quantize(Decimal(1).scaleb(-places)):
                errors.append(
                    {
                        "field": "amount",
                        "message": f"The amount has at most {places} decimal places "
                        f"in {currency.upper()}.",
                    }
                )
        reversal = kind == CreditLedgerEntry.Kind.REVERSAL
        if reversal and value is not None:
            held = credit_balance(organization=org, currency=currency)
            if value > held:
                errors.append(
                    {
                        "field": "amount",
                        "message": f"At most the unused balance, {held} {currency.upper()}, "
                        "can be reversed.",
                    }
                )
        if errors or value is None:
            raise ValidationFailed(" ".join(e["message"] for e in errors), errors=errors)
        value = value.quantize(Decimal("0.01"))  # as the ledger stores it (2 places)
        entry = CreditLedgerEntry.objects.for_tenant(org).create(
            organization=org,
            kind=kind,
            amount=-value if reversal else value,
            currency=currency,
            reason=reason,
            created_by_id=actor.user_id,
        )
        balance = credit_balance(organization=org, currency=currency)
        audit_record(
            organization_id=org.pk,
            action="billing.credit_reversed" if reversal else "billing.credit_granted",
            actor=actor,
            target_type="credit_ledger_entry",
            target_id=entry.pk,
            amount=str(value),
            currency=currency,
            reason=reason,
            balance=str(balance),
        )
    return entry


def _amount(amount: Decimal | str, errors: list[dict]) -> Decimal | None:
    """``amount`` as a finite Decimal in (0, CREDIT_GRANT_MAX], or None with a problem added."""
    value: Decimal | None
    if isinstance(amount, Decimal):
        value = amount
    else:
        text = str(amount).strip()
        if len(text) > AMOUNT_MAX:
            errors.append(
                {"field": "amount", "message": f"The amount is at most {AMOUNT_MAX} characters."}
            )
            return None
        try:
            value = Decimal(text)
        except InvalidOperation:
            value = None
    if value is None or not value.is_finite():
        errors.append({"field": "amount", "message": "The amount must be a number, e.g. 25.00."})
        return None
    if value <= 0:
        errors.append({"field": "amount", "message": "The amount must be more than zero."})
        return None
    if value > CREDIT_GRANT_MAX:
        errors.append({"field": "amount", "message": f"One grant is at most {CREDIT_GRANT_MAX:,}."})
        return None
    return value
