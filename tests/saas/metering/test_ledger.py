"""The usage ledger against PostgreSQL: one row per (organisation, meter, source), corrections
as new rows with a reason, and the sums per meter and day."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from saas.common.actor import Actor
from saas.metering.models import Meter, UsageEvent
from saas.metering.selectors import format_quantity, usage_by_meter_and_day, usage_for_source
from saas.metering.services import usage_correct, usage_record
from saas.tenancy.models import AuditEvent

pytestmark = pytest.mark.django_db

DAY1 = datetime.datetime(2026, 5, 4, 10, 0, tzinfo=datetime.UTC)
DAY2 = datetime.datetime(2026, 5, 5, 23, 59, tzinfo=datetime.UTC)


def _record(org_id: str, source_id: str, quantity, *, meter=Meter.PREDICTIONS, at=DAY1, **kw):
    return usage_record(
        organization_id=org_id,
        meter=meter,
        quantity=quantity,
        occurred_at=at,
        source_type="prediction",
        source_id=source_id,
        **kw,
    )


def test_the_same_source_twice_is_one_row(acme):
    first, created = _record(acme.org.pk, "pred_1", 3)
    again, created_again = _record(acme.org.pk, "pred_1", 5)
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk and again.quantity == Decimal("3.000000")
    rows = UsageEvent.objects.for_tenant(acme.org)
    assert rows.count() == 1
    assert rows.get().idempotency_key == "prediction:pred_1" and rows.get().unit == "prediction"

    # Another meter of the same source, or another organisation, is another row.
    _record(acme.org.pk, "pred_1", 1, meter=Meter.BATCH_PREDICTION_ROWS)
    assert rows.count() == 2


def test_the_database_refuses_a_duplicate_key_too(acme):
    _record(acme.org.pk, "pred_1", 1)
    with pytest.raises(IntegrityError), transaction.atomic():
        UsageEvent.objects.for_tenant(acme.org).create(
            organization=acme.org,
            meter=Meter.PREDICTIONS,
            quantity=1,
            unit="prediction",
            occurred_at=DAY1,
            source_type="prediction",
            source_id="other",
            idempotency_key="prediction:pred_1",
        )


def test_a_correction_is_a_new_negative_row_with_its_reason(acme):
    operator = Actor(user_id=acme.users["owner"].pk)
    event, _ = _record(acme.org.pk, "pred_1", 10)
    fix = usage_correct(event=event, quantity=Decimal("-4"), reason="double count", actor=operator)

    assert fix.pk != event.pk and fix.quantity == Decimal("-4.000000")
    assert (fix.source_type, fix.source_id, fix.reason) == (
        "correction",
        f"{event.pk}:1",
        "double count",
    )
    assert fix.dimensions == {"corrects": event.pk} and fix.occurred_at == event.occurred_at
    assert UsageEvent.objects.for_tenant(acme.org).get(pk=event.pk).quantity == Decimal("10")
    audit = AuditEvent.objects.for_tenant(acme.org).get(action="usage.corrected")
    assert (audit.target_id, audit.actor_user_id) == (str(event.pk), operator.user_id)
    assert audit.data == {"quantity": "-4", "reason": "double count"}

    second = usage_correct(event=event, quantity=Decimal("-6"), reason="refund", actor=operator)
    assert second.source_id == f"{event.pk}:2"


@pytest.mark.parametrize(
    "quantity, reason, message",
    [
        (Decimal("-1"), "  ", "needs a reason"),
        (Decimal("0"), "why", "must change"),
        (Decimal("-11"), "why", "negative"),
    ],
)
def test_a_bad_correction_writes_nothing(acme, quantity, reason, message):
    event, _ = _record(acme.org.pk, "pred_1", 10)
    with pytest.raises(ValueError, match=message):
        usage_correct(event=event, quantity=quantity, reason=reason, actor=Actor.system())
    assert UsageEvent.objects.for_tenant(acme.org).count() == 1
    assert not AuditEvent.objects.for_tenant(acme.org).filter(action="usage.corrected").exists()


def test_the_ledger_sums_per_meter_and_day_for_one_tenant(acme, globex):
    key = acme.key("owner").api_key
    _record(acme.org.pk, "p1", 3, api_key_id=key.pk)
    _record(acme.org.pk, "p2", 2, at=DAY1 + datetime.timedelta(hours=5))
    _record(acme.org.pk, "p3", 7, at=DAY2)
    _record(acme.org.pk, "tj_1", "12.5", meter=Meter.TRAINING_COMPUTE_SECONDS)
    event, _ = _record(acme.org.pk, "p4", 1, at=DAY2)
    usage_correct(event=event, quantity=Decimal("-1"), reason="test call", actor=Actor.system())
    _record(globex.org.pk, "p1", 100)

    assert usage_by_meter_and_day(organization_id=acme.org.pk) == [
        {"date": "2026-05-04", "meter": "predictions", "unit": "prediction", "quantity": "5"},
        {
            "date": "2026-05-04",
            "meter": "training_compute_seconds",
            "unit": "second",
            "quantity": "12.5",
        },
        {"date": "2026-05-05", "meter": "predictions", "unit": "prediction", "quantity": "7"},
    ]
    since = usage_by_meter_and_day(organization_id=acme.org.pk, since=DAY2)
    assert [r["quantity"] for r in since] == ["7"]
    by_key = usage_by_meter_and_day(organization_id=acme.org.pk, group_by="api_key")
    assert {
        (r["date"], r["api_key"], r["quantity"]) for r in by_key if r["meter"] == "predictions"
    } == {
        ("2026-05-04", key.pk, "3"),
        ("2026-05-04", None, "2"),
        ("2026-05-05", None, "7"),
    }
    with pytest.raises(KeyError):
        usage_by_meter_and_day(organization_id=acme.org.pk, group_by="colour")


def test_usage_for_source_and_quantity_format(acme):
    _record(acme.org.pk, "tj_1", "0.1234567", meter=Meter.TRAINING_COMPUTE_SECONDS)
    assert usage_for_source(
        organization_id=acme.org.pk, source_type="prediction", source_id="tj_1"
    ) == [
        {
            "meter": "training_compute_seconds",
            "quantity": "0.123457",
            "unit": "second",
            "dimensions": {},
        }
    ]
    assert format_quantity(Decimal("1E+3")) == "1000" and format_quantity("2.500000") == "2.5"
