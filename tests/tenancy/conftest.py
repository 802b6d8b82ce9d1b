"""Organisations with people of every role, signed-in clients and API keys."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from saas.apikeys.services import api_key_create
from saas.tenancy.models import Membership
from saas.tenancy.services import _user_for_email, organization_create

ROLES = ["owner", "admin", "developer", "viewer", "billing"]


class Org:
    def __init__(self, slug: str):
        self.org = organization_create(slug=slug, name=slug, owner_email=f"owner@{slug}.test")
        self.users = {"owner": Membership.objects.get(organization=self.org).user}
        for role in ROLES[1:]:
            user = _user_for_email(f"{role}@{slug}.test")
            Membership.objects.create(organization=self.org, user=user, role=role)
            self.users[role] = user

    def session(self, role: str) -> APIClient:
        c = APIClient()
        c.force_login(self.users[role])
        return c

    def key(self, role: str = "owner", scopes=None) -> APIClient:
        issued = api_key_create(
            organization=self.org, name=f"{role} key", scopes=scopes, created_by=self.users[role]
        )
        c = APIClient()
        c.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
        c.api_key = issued.api_key
        return c


@pytest.fixture
def acme(db) -> Org:
    return Org("acme")


@pytest.fixture
def globex(db) -> Org:
    return Org("globex")


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings):
    """Each test starts with full buckets (rate-limit state lives in Redis)."""
    import redis

    r = redis.Redis.from_url(settings.REDIS_URL)
    for k in r.scan_iter("rl:*"):
        r.delete(k)
