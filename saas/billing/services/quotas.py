"""Checks when work is accepted: hard quotas and spend caps (402 when refused)."""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from saas.apikeys.models import ApiKey
from saas.common.actor import Actor
from saas.common.errors import DomainError
from saas.tenancy.models import Organization

from .. import pricing
from ..models import BillingAccount, QuotaReservation
from ..selectors import billing_account_get, period_charges, usage_totals


class PaymentRequired(DomainError):
    """402: a hard quota or a spend cap refuses new work; ``extra`` says which and when it resets."""

    status = 402
    code = "payment-required"
    title = "A billing limit was reached"


def billing_check(
    *,
    organization: Organization,
    meter: str,
    quantity: Decimal | int,
    actor: Actor,
    on: datetime.date | None = None,
) -> None:
    """Refuse work the organisation cannot be billed for, with a 402 problem saying why.

    Checks, for the month holding ``on`` (today): a hard quota (plans with hard limits, e.g.
    free: ``included_units`` of ``meter``), the organisation's monthly spend cap, and the API
    key's monthly spend cap, the key being ``actor.api_key_id`` (looked up here; a user or the
    system has no key cap). Running work is never stopped; this only gates new work.
    ``quantity`` is the units the new work adds (0 when unknown, e.g. a training job: then the
    check is "already at the limit").

    Raises PaymentRequired (402), whose ``extra`` says which limit and when it resets.
    """
    on = on or timezone.now().date()
    start, end = pricing.month_bounds(on)
    account = billing_account_get(organization=organization)
    reset = end.isoformat()
    totals = usage_totals(organization_id=organization.pk, start=start, end=end)
    if account.plan.hard_limits:
        price = pricing.price_for(
            organization_id=organization.pk, plan=account.plan, meter=meter, on=on
        )
        used = totals.get(meter, Decimal(0))
        if used + Decimal(quantity) > price.included_units or (
            quantity == 0 and used >= price.included_units
        ):
            raise PaymentRequired(
                f"The {account.plan.name} plan includes {price.included_units.normalize():f} {meter} a month; "
                f"{used.normalize():f} are used. The quota resets on {reset}; upgrade to continue now.",
                meter=str(meter),
                limit=f"{price.included_units.normalize():f}",
                used=f"{used.normalize():f}",
                resets_on=reset,
            )
    if account.monthly_spend_cap is not None:
        spent = period_charges(organization=organization, start=start, end=end).total
        if spent >= account.monthly_spend_cap:
            raise PaymentRequired(
                f"Your organisation's monthly spend cap of {account.monthly_spend_cap} {account.plan.currency} "
                f"is reached ({spent} spent this month); it resets on {reset}.",
                limit=str(account.monthly_spend_cap),
                spent=str(spent),
                remaining="0",
                resets_on=reset,
            )
    api_key = (
        ApiKey.objects.for_tenant(organization).filter(pk=actor.api_key_id).first()
        if actor.api_key_id is not None
        else None
    )
    cap = api_key.monthly_spend_cap if api_key is not None else None
    if api_key is not None and cap is not None:
        key_totals = usage_totals(
            organization_id=organization.pk, start=start, end=end, api_key_id=api_key.pk
        )
        contract = pricing.contract_active(organization_id=organization.pk, on=start)
        key_spent = Decimal(0)
        for m, q in key_totals.items():
            p = pricing.price_for(
                organization_id=organization.pk,
                plan=account.plan,
                meter=m,
                on=start,
                contract=contract,
            )
            key_spent += (
                q * p.unit_price
            )  # the key's usage at its unit price, included units ignored
        key_spent = pricing.round_money(
            key_spent, contract.currency if contract else account.plan.currency
        )
        if key_spent >= cap:
            raise PaymentRequired(
                f"This API key's monthly spend cap of {cap} is reached ({key_spent} spent); it resets on {reset}.",
                limit=str(cap),
                spent=str(key_spent),
                remaining="0",
                resets_on=reset,
            )


# ---- reservations: accepted work holds its estimate until it is billed ------------------------


def _fmt(q: Decimal) -> str:
    return f"{Decimal(q).normalize():f}"


def _active_reservations(
    organization_id: str, *, exclude: tuple[str, str] | None
) -> list[QuotaReservation]:
    qs = QuotaReservation.objects.for_tenant(organization_id).filter(released_at__isnull=True)
    if exclude is not None:
        qs = qs.exclude(source_type=exclude[0], source_id=exclude[1])
    return list(qs)


def _admit(
    *,
    organization: Organization,
    account: BillingAccount,
    quantities: dict[str, Decimal],
    api_key_id: str | None,
    on: datetime.date,
    exclude: tuple[str, str] | None,
    running: bool,
) -> Decimal:
    """Refuse ``quantities`` (``{meter: units}``) on top of the month's billed usage and every
    other active reservation; returns their expected charge beyond the included units.

    At admission (``running`` False) a quantity that does not fit is refused; for running
    work (``running`` True) reaching the limit is (the job has used what was left).
    Raises PaymentRequired naming the ``meter`` (hard quota), or ``limit: "spend_cap"`` /
    ``"api_key_spend_cap"``.
    """
    start, end = pricing.month_bounds(on)
    reset = end.isoformat()
    totals = usage_totals(organization_id=organization.pk, start=start, end=end)
    others = _active_reservations(organization.pk, exclude=exclude)
    held: dict[str, Decimal] = {}
    for r in others:
        for m, q in r.quantities.items():
            held[m] = held.get(m, Decimal(0)) + Decimal(q)
    contract = pricing.contract_active(organization_id=organization.pk, on=start)
    currency = contract.currency if contract else account.plan.currency
    amount = Decimal(0)
    for meter, qty in quantities.items():
        qty = Decimal(qty)
        price = pricing.price_for(
            organization_id=organization.pk,
            plan=account.plan,
            meter=meter,
            on=on,
            contract=contract,
        )
        used = totals.get(meter, Decimal(0)) + held.get(meter, Decimal(0))
        if account.plan.hard_limits and contract is None:
            total = used + qty
            over = total >= price.included_units if running else total > price.included_units
            if over or (qty == 0 and used >= price.included_units):
                left = max(Decimal(0), price.included_units - used)
                raise PaymentRequired(
                    f"The {account.plan.name} plan includes {_fmt(price.included_units)} {meter} "
                    f"a month; {_fmt(totals.get(meter, Decimal(0)))} are used and "
                    f"{_fmt(held.get(meter, Decimal(0)))} are held by other accepted jobs, "
                    f"so {_fmt(left)} remain"
                    + (
                        " and this job used them up."
                        if running
                        else f", fewer than this job's estimated {_fmt(qty)}."
                    )
                    + f" The quota resets on {reset}; upgrade to continue now.",
                    meter=str(meter),
                    limit=_fmt(price.included_units),
                    used=_fmt(totals.get(meter, Decimal(0))),
                    reserved=_fmt(held.get(meter, Decimal(0))),
                    requested=_fmt(qty),
                    remaining=_fmt(left),
                    resets_on=reset,
                )
        included = pricing.included_share(price.included_units - used, qty)
        amount += pricing.billable_units(qty, included) * price.unit_price
    amount = pricing.round_money(amount, currency)
    held_amount = sum((r.amount for r in others), Decimal(0))
    if account.monthly_spend_cap is not None:
        spent = period_charges(organization=organization, start=start, end=end).total
        total = spent + held_amount + amount
        cap = account.monthly_spend_cap
        if (total >= cap if running else total > cap) or spent >= cap:
            raise PaymentRequired(
                f"Your organisation's monthly spend cap of {cap} {currency} leaves "
                f"{max(Decimal(0), cap - spent - held_amount)} after {spent} spent and "
                f"{held_amount} held by other accepted jobs; this job "
                + (f"has used {amount}." if running else f"is expected to cost {amount}.")
                + f" The cap resets on {reset}.",
                limit="spend_cap",
                cap=str(cap),
                remaining=str(max(Decimal(0), cap - spent - held_amount)),
                spent=str(spent),
                reserved=str(held_amount),
                requested=str(amount),
                resets_on=reset,
            )
    if api_key_id is not None:
        key = ApiKey.objects.for_tenant(organization).filter(pk=api_key_id).first()
        if key is not None and key.monthly_spend_cap is not None:
            key_spent = Decimal(0)
            for m, q in usage_totals(
                organization_id=organization.pk, start=start, end=end, api_key_id=key.pk
            ).items():
                p = pricing.price_for(
                    organization_id=organization.pk,
                    plan=account.plan,
                    meter=m,
                    on=start,
                    contract=contract,
                )
                key_spent += q * p.unit_price  # as billing_check counts it: no included units
            key_held = sum((r.amount for r in others if r.api_key_id == key.pk), Decimal(0))
            key_spent = pricing.round_money(key_spent, currency)
            total = key_spent + key_held + amount
            if (total >= key.monthly_spend_cap if running else total > key.monthly_spend_cap) or (
                key_spent >= key.monthly_spend_cap
            ):
                raise PaymentRequired(
                    f"This API key's monthly spend cap of {key.monthly_spend_cap} leaves "
                    f"{max(Decimal(0), key.monthly_spend_cap - key_spent - key_held)}; this job "
                    + (f"has used {amount}." if running else f"is expected to cost {amount}.")
                    + f" The cap resets on {reset}.",
                    limit="api_key_spend_cap",
                    cap=str(key.monthly_spend_cap),
                    remaining=str(max(Decimal(0), key.monthly_spend_cap - key_spent - key_held)),
                    spent=str(key_spent),
                    reserved=str(key_held),
                    requested=str(amount),
                    resets_on=reset,
                )
    return amount


def _locked_account(organization: Organization) -> BillingAccount:
    """The billing account, row-locked for the transaction: reservations and completions
    (``training_charge``) of one organisation are decided one after the other."""
    account = billing_account_get(organization=organization)
    return BillingAccount.objects.for_tenant(organization).select_for_update().get(pk=account.pk)


@transaction.atomic
def quota_reserve(
    *,
    organization: Organization,
    source_type: str,
    source_id: str | None,
    quantities: dict[str, Decimal],
    actor: Actor,
    on: datetime.date | None = None,
) -> QuotaReservation | None:
    """Reserve ``quantities`` (``{meter: units}``, e.g. a training job's estimated compute
    seconds and examples) for accepted work, or refuse it with a 402.

    Every meter given is checked against the plan's hard quota (used this month + held by
    other active reservations + this), and the expected charge beyond the included units
    against the organisation's and ``actor``'s API key's monthly spend caps. Under the billing
    account's row lock, so of two submissions racing for the last of a quota one wins.
    ``source_id`` None is a dry run: checked the same way, nothing written (returns None).
    Idempotent per ``(source_type, source_id)``: a second call returns the first reservation.

    Raises PaymentRequired (402) naming the ``meter`` or the cap that does not fit.
    """
    on = on or timezone.now().date()
    account = _locked_account(organization)
    if source_id is not None:
        existing = (
            QuotaReservation.objects.for_tenant(organization)
            .filter(source_type=source_type, source_id=source_id)
            .first()
        )
        if existing is not None:
            return existing
    amount = _admit(
        organization=organization,
        account=account,
        quantities=quantities,
        api_key_id=actor.api_key_id,
        on=on,
        exclude=None,
        running=False,
    )
    if source_id is None:
        return None
    return QuotaReservation.objects.for_tenant(organization).create(
        organization=organization,
        source_type=source_type,
        source_id=source_id,
        quantities={m: _fmt(q) for m, q in quantities.items()},
        amount=amount,
        api_key_id=actor.api_key_id,
    )


def quota_release(*, organization_id: str, source_type: str, source_id: str) -> bool:
    """Release what ``(source_type, source_id)`` reserved (its work ended: billed, refused,
    cancelled or failed). Call inside the transaction that records the end, so the usage
    events replace the reservation atomically. Returns False when there was nothing held."""
    return bool(
        QuotaReservation.objects.for_tenant(organization_id)
        .filter(source_type=source_type, source_id=source_id, released_at__isnull=True)
        .update(released_at=timezone.now())
    )


def quota_exhausted(
    *,
    organization_id: str,
    source_type: str,
    source_id: str,
    quantities: dict[str, Decimal],
    api_key_id: str | None,
    on: datetime.date | None = None,
) -> PaymentRequired | None:
    """For running work: the 402 it would get now, having used ``quantities`` so far
    (``{meter: units}``), or None while it may go on.

    Its own reservation is set aside (the usage so far replaces it); the billed usage and the
    other active reservations count. A hard quota, the spend cap or the key's cap is exhausted
    when this work's usage reaches what is left. Reads only (no lock): a worker asks this once
    per epoch."""
    on = on or timezone.now().date()
    org = Organization.objects.get(pk=organization_id)
    try:
        _admit(
            organization=org,
            account=billing_account_get(organization=org),
            quantities=quantities,
            api_key_id=api_key_id,
            on=on,
            exclude=(source_type, source_id),
            running=True,
        )
    except PaymentRequired as refused:
        return refused
    return None
