"""What the data plane (``serve``) needs to know about a caller and a model, read in bulk.

The data plane answers predictions without a database round trip on the hot path: it keeps
these snapshots in memory and re-reads them in the background (``serve.auth``). Everything
here is a read; each function costs a bounded number of queries whatever the number of rows
passed in (one ``IN (…)`` query per table).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from saas.apikeys.models import ApiKey
from saas.apikeys.services import InvalidApiKey, api_key_authenticate
from saas.billing import pricing
from saas.billing.models import BillingAccount
from saas.billing.selectors import period_charges, usage_totals
from saas.metering.models import Meter
from saas.registry.models import TrainedModel
from saas.tenancy.access import Access
from saas.tenancy.models import Membership, Organization
from saas.tenancy.permissions import Action


@dataclass(frozen=True)
class ServingPrincipal:
    """A caller allowed, or not, to predict in an organisation, as of ``read_at``.

    Attributes:
        organization_id: the tenant.
        principal: ``key_…`` for an API key, ``user:<id>`` for a dashboard user.
        api_key_id: the key, or None for a user.
        user_id: the key's creator or the user (None for operator keys).
        denial: None when the role and scopes allow ``models.predict``; else the 403 detail.
        suspended: the organisation is suspended (predicting costs money: refused with
            ``saas.tenancy.access.SUSPENDED_DETAIL``).
        predictions_per_key, predictions_per_organization: the plan's rate limits, in
            prediction inputs per ``TRAINYARD_RATE_LIMIT_WINDOW_SECONDS``.
        key_spend_cap: the key's monthly spend cap (None: no cap).
        expires_at: when the key stops working (None: never, and for users); the data plane
            refuses it from then on even before its next refresh.
    """

    organization_id: str
    principal: str
    api_key_id: str | None
    user_id: int | None
    denial: str | None
    suspended: bool
    predictions_per_key: int
    predictions_per_organization: int
    key_spend_cap: Decimal | None
    expires_at: datetime.datetime | None = None


@dataclass(frozen=True)
class PredictionBudget:
    """Month-to-date money and quota facts for admitting predictions (one organisation, and
    optionally one key), all read in one snapshot so the data plane can add what it counted
    since (``units`` are the ``predictions`` in the ledger when ``spent`` was computed).

    Attributes:
        month: ``YYYYMM`` (UTC) the figures are for.
        hard_limit: the predictions quota when the plan has hard limits, else None.
        unit_price: price of one prediction (contract price if a contract governs the month).
        included_units: predictions included before ``unit_price`` applies.
        org_spend_cap, org_spent, org_units: the organisation's monthly cap (None: none), its
            month-to-date charges, and the predictions in the ledger.
        key_spend_cap, key_spent, key_units: the same for the key (its usage at unit price,
            included units ignored, as ``billing_check`` counts it); zero without a key.
    """

    month: str
    hard_limit: Decimal | None
    unit_price: Decimal
    included_units: Decimal
    org_spend_cap: Decimal | None
    org_spent: Decimal
    org_units: Decimal
    key_spend_cap: Decimal | None = None
    key_spent: Decimal = Decimal(0)
    key_units: Decimal = Decimal(0)


@dataclass(frozen=True)
class ServingModel:
    """An immutable model version as the data plane loads it."""

    id: str
    organization_id: str
    task: str
    version: int
    classes: tuple[str, ...]
    artifact_key: str
    artifact_bytes: int
    base_model: str
    created_at: datetime.datetime


def _principal(key: ApiKey, role: str | None, account: BillingAccount | None) -> ServingPrincipal:
    access = Access(
        organization=key.organization,
        role=role,
        user_id=key.created_by_id,
        api_key_id=key.pk,
        scopes=frozenset(key.scopes),
    )
    denial = access.denial(Action.MODELS_PREDICT)
    suspended = access.blocked_when_suspended(Action.MODELS_PREDICT)
    plan = account.plan if account is not None else None
    return ServingPrincipal(
        organization_id=key.organization_id,
        principal=key.pk,
        api_key_id=key.pk,
        user_id=key.created_by_id,
        denial=denial,
        suspended=suspended,
        predictions_per_key=plan.predictions_per_key if plan else 1,
        predictions_per_organization=plan.predictions_per_organization if plan else 1,
        key_spend_cap=key.monthly_spend_cap,
        expires_at=key.expires_at,
    )


def serving_principal_for_token(*, raw: str) -> ServingPrincipal | str:
    """Resolve a presented API key (``ty_live_…``), or say why not (``"API key revoked"``,
    ``"invalid API key"``, …: the 401's detail). A few queries (the key, its creator's role,
    the plan); the data plane calls this once per key per replica and then refreshes with
    :func:`serving_principals`."""
    try:
        key = api_key_authenticate(raw=raw)
    except InvalidApiKey as exc:
        return str(exc)
    return serving_principals(api_key_ids=[key.pk]).get(key.pk) or "API key revoked"


def serving_principals(*, api_key_ids: list[str]) -> dict[str, ServingPrincipal]:
    """Current snapshots of these keys; a key missing from the answer is revoked, expired or
    gone (refuse it). Three queries whatever the number of keys."""
    if not api_key_ids:
        return {}
    now = timezone.now()
    keys = list(
        ApiKey.objects.unscoped_all_tenants()
        .filter(pk__in=api_key_ids, revoked_at__isnull=True)
        .select_related("organization")
    )
    keys = [k for k in keys if k.expires_at is None or k.expires_at > now]
    roles: dict[tuple[str, int | None], str] = {
        (m.organization_id, m.user_id): m.role
        for m in Membership.objects.filter(
            organization_id__in={k.organization_id for k in keys},
            user_id__in={k.created_by_id for k in keys if k.created_by_id is not None},
        )
    }
    accounts = {
        a.organization_id: a
        for a in BillingAccount.objects.unscoped_all_tenants()
        .filter(organization_id__in={k.organization_id for k in keys})
        .select_related("plan")
    }
    return {
        k.pk: _principal(
            k, roles.get((k.organization_id, k.created_by_id)), accounts.get(k.organization_id)
        )
        for k in keys
    }


def serving_user_principal(*, organization_id: str, user_id: int) -> ServingPrincipal | None:
    """A dashboard member predicting through the data plane ("try it"); None when the user is
    no longer a member. Bounded by the member's role like any session."""
    membership = (
        Membership.objects.filter(organization_id=organization_id, user_id=user_id)
        .select_related("organization")
        .first()
    )
    if membership is None:
        return None
    org: Organization = membership.organization
    access = Access(organization=org, role=membership.role, user_id=user_id)
    denial = access.denial(Action.MODELS_PREDICT)
    suspended = access.blocked_when_suspended(Action.MODELS_PREDICT)
    account = BillingAccount.objects.for_tenant(organization_id).select_related("plan").first()
    return ServingPrincipal(
        organization_id=organization_id,
        principal=f"user:{user_id}",
        api_key_id=None,
        user_id=user_id,
        denial=denial,
        suspended=suspended,
        predictions_per_key=account.plan.predictions_per_key if account else 1,
        predictions_per_organization=account.plan.predictions_per_organization if account else 1,
        key_spend_cap=None,
    )


def prediction_budget(
    *, organization_id: str, api_key_id: str | None, on: datetime.date | None = None
) -> PredictionBudget:
    """The figures the data plane's admission needs for the month holding ``on`` (today).

    Costs a few small queries, plus aggregates over the month's ledger rows when a limit
    applies (a hard quota, an organisation or key spend cap); the data plane runs it in the
    background every few seconds per active organisation and key, never per request.
    Raises ``BillingAccount.DoesNotExist`` for an organisation without a billing account.
    """
    on = on or timezone.now().date()
    start, end = pricing.month_bounds(on)
    org = Organization.objects.get(pk=organization_id)
    account = BillingAccount.objects.for_tenant(org).select_related("plan").get()
    contract = pricing.contract_active(organization_id=organization_id, on=start)
    price = pricing.price_for(
        organization_id=organization_id,
        plan=account.plan,
        meter=Meter.PREDICTIONS,
        on=on,
        contract=contract,
    )
    # The month's aggregates are read only when a limit needs them: the admission script
    # keeps no counter otherwise (``serve.admission``).
    org_limited = account.plan.hard_limits or account.monthly_spend_cap is not None
    totals = (
        usage_totals(organization_id=organization_id, start=start, end=end) if org_limited else {}
    )
    spent = (
        period_charges(organization=org, start=start, end=end).total
        if account.monthly_spend_cap is not None
        else Decimal(0)
    )
    key_cap = None
    key_spent = key_units = Decimal(0)
    if api_key_id is not None:
        key_cap = (
            ApiKey.objects.for_tenant(org)
            .filter(pk=api_key_id)
            .values_list("monthly_spend_cap", flat=True)
            .first()
        )
        if key_cap is not None:
            key_totals = usage_totals(
                organization_id=organization_id, start=start, end=end, api_key_id=api_key_id
            )
            key_units = key_totals.get(Meter.PREDICTIONS, Decimal(0))
            for meter, quantity in key_totals.items():
                p = pricing.price_for(
                    organization_id=organization_id,
                    plan=account.plan,
                    meter=meter,
                    on=start,
                    contract=contract,
                )
                key_spent += quantity * p.unit_price
    return PredictionBudget(
        month=f"{on:%Y%m}",
        hard_limit=price.included_units if account.plan.hard_limits else None,
        unit_price=price.unit_price,
        included_units=price.included_units,
        org_spend_cap=account.monthly_spend_cap,
        org_spent=spent,
        org_units=totals.get(Meter.PREDICTIONS, Decimal(0)),
        key_spend_cap=key_cap,
        key_spent=key_spent,
        key_units=key_units,
    )


def serving_model(*, model_id: str) -> ServingModel | None:
    """The model version behind ``model_id`` (any tenant's: the caller compares the
    organisation, so another tenant's model answers the same 404 as a missing one). None for
    a deleted model too."""
    m = (
        TrainedModel.objects.unscoped_all_tenants()
        .filter(pk=model_id, deleted_at__isnull=True)
        .first()
    )
    if m is None:
        return None
    return ServingModel(
        id=m.pk,
        organization_id=m.organization_id,
        task=m.task,
        version=m.version,
        classes=tuple(m.classes),
        artifact_key=m.artifact_key,
        artifact_bytes=m.artifact_bytes,
        base_model=m.base_model,
        created_at=m.created_at,
    )
