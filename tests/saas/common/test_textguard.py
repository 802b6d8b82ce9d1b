"""The floor under every serializer and form: a model save with a string PostgreSQL would
refuse is a ValidationFailed naming the field, and nothing is written."""

from __future__ import annotations

import pytest

from saas.common.errors import ValidationFailed
from saas.datasets.models import Dataset
from saas.tenancy.models import AuditEvent
from tests.conftest import small_text_rows, text_csv, upload

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "name, message",
    [
        ("x" * 201, "is 201 characters long; at most 200 are allowed"),
        ("a\x00b", "contains a NUL character"),
        ("\ud800", "contains an unpaired surrogate (not valid Unicode text)"),
    ],
)
def test_a_bad_string_is_refused_before_the_database(tenant, name, message):
    ds = Dataset.objects.for_tenant(tenant.org).get(
        pk=upload(tenant.client, text_csv(small_text_rows())).json()["id"]
    )
    ds.name = name
    with pytest.raises(ValidationFailed) as exc:
        ds.save()
    assert exc.value.errors == [{"field": "name", "message": message}]
    ds.refresh_from_db()
    assert ds.name == "data.csv"


def test_a_nul_in_a_json_key_or_value_is_refused(tenant):
    ds = Dataset.objects.for_tenant(tenant.org).get(
        pk=upload(tenant.client, text_csv(small_text_rows())).json()["id"]
    )
    for classes in ({"a\x00": 1}, {"a": ["\x00"]}):
        ds.classes = classes
        with pytest.raises(ValidationFailed) as exc:
            ds.save()
        assert exc.value.errors[0]["field"] == "classes"


def test_good_strings_still_save(tenant):
    before = AuditEvent.objects.for_tenant(tenant.org).count()
    r = upload(tenant.client, text_csv(small_text_rows()), name="Ω" * 200)
    assert r.status_code == 201 and r.json()["name"] == "Ω" * 200
    assert AuditEvent.objects.for_tenant(tenant.org).count() > before
