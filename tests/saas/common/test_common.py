"""``saas.common``: prefixed ids, the actor's client IP behind trusted proxies, local copies of
stored files, and domain errors carrying their problem fields."""

from __future__ import annotations

import re

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import RequestFactory

from saas.common.actor import Actor, client_ip
from saas.common.errors import NotFound, ValidationFailed
from saas.common.ids import IdFactory, new_id
from saas.common.storage import local_copy


def test_new_id_is_prefixed_base62_and_unique():
    ids = {new_id("ds") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"ds_[A-Za-z0-9]{20}", i) for i in ids)
    assert re.fullmatch(r"tj_[A-Za-z0-9]{8}", new_id("tj", length=8))


def test_id_factory_deconstructs_for_migrations():
    factory = IdFactory("mdl")
    assert factory().startswith("mdl_")
    assert factory.deconstruct() == ("saas.common.ids.IdFactory", ("mdl",), {})
    assert factory == IdFactory("mdl") and hash(factory) == hash(IdFactory("mdl"))
    assert factory != IdFactory("ds")


@pytest.mark.parametrize(
    "forwarded, trusted, expected",
    [
        ("", 0, "10.0.0.1"),
        ("198.51.100.1", 0, "10.0.0.1"),  # no trusted proxy: the header is the client's word
        ("203.0.113.5, 198.51.100.1", 1, "198.51.100.1"),
        ("6.6.6.6, 203.0.113.5, 198.51.100.1", 2, "203.0.113.5"),
        ("203.0.113.5", 2, "203.0.113.5"),
        ("", 1, "10.0.0.1"),
    ],
)
def test_client_ip_reads_only_what_trusted_proxies_appended(forwarded, trusted, expected):
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request, trusted) == expected


def test_actor_for_user_and_system(settings, django_user_model, db):
    settings.TRAINYARD_TRUSTED_PROXIES = 0
    user = django_user_model.objects.create_user(username="u", email="u@x.test")
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.4")
    assert Actor.for_user(request, user) == Actor(user_id=user.pk, ip="192.0.2.4")
    assert Actor.system() == Actor(user_id=None, api_key_id=None, ip=None)


def test_local_copy_of_a_stored_file():
    key = default_storage.save("tenants/t/x.bin", ContentFile(b"payload"))
    with local_copy(key, suffix=".bin") as path, open(path, "rb") as fh:
        assert fh.read() == b"payload"


def test_domain_errors_carry_status_code_and_fields():
    err = ValidationFailed("bad", errors=[{"field": "name", "message": "required"}], limit=3)
    assert (err.status, err.code, err.detail, err.extra) == (
        400,
        "validation-failed",
        "bad",
        {"limit": 3},
    )
    assert err.errors == [{"field": "name", "message": "required"}]
    assert (NotFound("x").status, NotFound("x").errors) == (404, [])
