"""Pushing invoices to Stripe until they are pushed: a first try when the period closes, then
retries with exponential backoff (Celery beat, ``trainyard.billing.stripe_push_retry``).

An invoice to push has ``stripe_next_attempt_at`` set (period close sets it to the issue time);
a successful push clears it. Each try first claims the invoice by moving ``next_attempt_at``
``LEASE`` ahead in one conditional update, so the first try after commit, the beat task and an
operator's rerun never push the same invoice at once; a failure sets it ``backoff(attempts)``
ahead. The push itself (``stripe_sync.invoice_push``) is idempotent: Stripe idempotency keys
derived from our ids, and the Stripe ids stored as soon as Stripe answers, so a retry after a
timeout continues where the last try stopped and never creates twice.
"""

from __future__ import annotations

import datetime
import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from saas.common.actor import Actor
from saas.common.errors import NotFound
from saas.tenancy.audit import audit_record

from .. import stripe_sync
from ..models import Invoice

log = logging.getLogger(__name__)

# The first retry a minute after a failure, then 2, 4, 8 … minutes, at most six hours apart:
# a Stripe outage of any length is bridged, and a long one costs a few calls an hour.
BACKOFF_BASE = datetime.timedelta(seconds=60)
BACKOFF_CAP = datetime.timedelta(hours=6)
# How long a claimed try may take before another may take the invoice over (a worker that died
# mid-push); far above the SDK's own timeouts and retries.
LEASE = datetime.timedelta(minutes=10)
# Invoices retried per beat run, oldest due first (the rest wait for the next run).
BATCH = 100


def backoff(attempts: int) -> datetime.timedelta:
    """Delay before the next try after ``attempts`` failed ones (≥ 1): ``BACKOFF_BASE`` ×
    2^(attempts − 1), at most ``BACKOFF_CAP``."""
    exponent = min(max(attempts, 1) - 1, 30)  # 2**30 minutes is far past the cap already
    return min(BACKOFF_BASE * (2**exponent), BACKOFF_CAP)


def invoice_stripe_push(
    *, organization_id: str, invoice_id: str, now: datetime.datetime | None = None
) -> bool | None:
    """Try once to push one invoice to Stripe, if it is due (``stripe_next_attempt_at`` ≤
    ``now``) and no other try holds it. A system task: no actor (the push changes no
    customer-visible state of ours but the Stripe ids).

    Returns True when pushed (``stripe_next_attempt_at`` cleared), False when the try failed
    (``stripe_push_attempts`` + 1, ``stripe_last_error``, next try ``backoff(attempts)``
    later), None when nothing was tried (not due, claimed by another try, or Stripe is not
    configured: then the invoice stays due for when it is). Never raises for a Stripe failure.
    """
    if not stripe_sync.stripe_enabled():
        return None
    now = now or timezone.now()
    scoped = Invoice.objects.for_tenant(organization_id).filter(pk=invoice_id)
    claimed = scoped.filter(stripe_next_attempt_at__lte=now).update(
        stripe_next_attempt_at=now + LEASE
    )
    if not claimed:
        return None
    invoice = scoped.get()
    try:
        stripe_sync.invoice_push(invoice=invoice)
    except Exception as exc:  # any failure is retried later; the local invoice stands
        attempts = invoice.stripe_push_attempts + 1
        scoped.update(
            stripe_push_attempts=attempts,
            stripe_next_attempt_at=now + backoff(attempts),
            stripe_last_error=f"{type(exc).__name__}: {exc}"[:300],
        )
        log.warning(
            "pushing invoice %s to Stripe failed (attempt %d); next try in %s",
            invoice.number,
            attempts,
            backoff(attempts),
        )
        return False
    scoped.update(
        stripe_push_attempts=F("stripe_push_attempts") + 1,
        stripe_next_attempt_at=None,
        stripe_last_error="",
    )
    return True


def stripe_push_retry(*, now: datetime.datetime | None = None) -> dict[str, int]:
    """Try every invoice whose Stripe push is due (Celery beat, every few minutes), oldest
    due first, at most ``BATCH`` a run. Returns ``{"pushed": n, "failed": n}``; a system task
    over every tenant (no actor)."""
    now = now or timezone.now()
    if not stripe_sync.stripe_enabled():
        return {"pushed": 0, "failed": 0}
    due = list(
        Invoice.objects.unscoped_all_tenants()  # a system task over every tenant's invoices
        .filter(stripe_next_attempt_at__lte=now)
        .order_by("stripe_next_attempt_at")
        .values_list("organization_id", "pk")[:BATCH]
    )
    out = {"pushed": 0, "failed": 0}
    for organization_id, invoice_id in due:
        result = invoice_stripe_push(
            organization_id=organization_id, invoice_id=invoice_id, now=now
        )
        if result is True:
            out["pushed"] += 1
        elif result is False:
            out["failed"] += 1
    return out


def invoice_stripe_repush(
    *, organization_id: str, invoice_id: str, actor: Actor, reason: str
) -> bool | None:
    """An operator's "push this invoice to Stripe again" (the console): make it due now, audit
    ``invoice.stripe_repush_requested`` with ``actor`` and ``reason`` in the same transaction,
    then try once with :func:`invoice_stripe_push` (outside the transaction: it calls Stripe).
    Returns what that try returned. Raises NotFound for a missing or another tenant's invoice."""
    with transaction.atomic():
        scoped = Invoice.objects.for_tenant(organization_id).filter(pk=invoice_id)
        if not scoped.update(stripe_next_attempt_at=timezone.now() - datetime.timedelta(seconds=1)):
            raise NotFound("No such invoice.")
        audit_record(
            organization_id=organization_id,
            action="invoice.stripe_repush_requested",
            actor=actor,
            target_type="invoice",
            target_id=invoice_id,
            reason=reason,
        )
    return invoice_stripe_push(organization_id=organization_id, invoice_id=invoice_id)
