"""Signing in by email address (``saas.accounts.backends.EmailBackend``) against PostgreSQL."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from saas.accounts.backends import EmailBackend

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return get_user_model().objects.create_user(
        username="Ada@Example.test", email="Ada@Example.test", password="x-Secret-123"
    )


def test_email_in_any_case_with_surrounding_spaces(user):
    backend = EmailBackend()
    assert (
        backend.authenticate(None, username=" ada@example.TEST ", password="x-Secret-123") == user
    )
    assert backend.authenticate(None, email="ADA@example.test", password="x-Secret-123") == user


def test_wrong_password_unknown_email_and_inactive_user_are_refused(user):
    backend = EmailBackend()
    assert backend.authenticate(None, username="ada@example.test", password="wrong") is None
    assert backend.authenticate(None, username="bob@example.test", password="x-Secret-123") is None
    assert backend.authenticate(None, username="ada@example.test", password=None) is None
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert backend.authenticate(None, username="ada@example.test", password="x-Secret-123") is None
