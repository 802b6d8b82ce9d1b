"""Organisations (tenants), memberships, and the tenant-scoped base every tenant-owned model uses.

Tenancy fails closed: ``TenantModel.objects`` refuses to build a query until it is given an
organisation (``Model.objects.for_tenant(org)``). The escape hatch for operators and the
stuck-job reaper is ``Model.objects.unscoped_all_tenants()``, named to stand out in review.
"""

from __future__ import annotations

from typing import NoReturn, TypeVar

from django.conf import settings
from django.db import models

from saas.common.ids import IdFactory


class UnscopedQueryError(RuntimeError):
    """A tenant-owned model was queried without an organisation."""


class Organization(models.Model):
    """A tenant: a company that owns datasets, jobs, models, keys and usage.

    Which plan it is on is billing's to say (``BillingAccount.plan``, read through
    ``saas.billing.selectors``); tenancy sits below billing and knows plans only by code.
    ``initial_plan`` is not stored: it is the plan code billing opens the account on when the
    organisation is first saved (see ``saas.billing.receivers``); set it before that save.
    """

    class Status(models.TextChoices):
        ACTIVE = "active"
        SUSPENDED = "suspended"

    id = models.CharField(primary_key=True, max_length=32, default=IdFactory("org"), editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)

    initial_plan: str = "free"

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    """A user's role in an organisation."""

    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        DEVELOPER = "developer"
        VIEWER = "viewer"
        BILLING = "billing"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.DEVELOPER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="uniq_membership")
        ]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.organization_id} ({self.role})"


# The model a queryset or manager yields, so that ``Dataset.objects.for_tenant(org)`` is typed
# as a queryset of datasets.
_M = TypeVar("_M", bound=models.Model)


class TenantQuerySet(models.QuerySet[_M]):
    pass


class TenantManager(models.Manager[_M]):
    """Default manager of tenant-owned models: every query must name its organisation."""

    def get_queryset(self) -> NoReturn:
        raise UnscopedQueryError(
            f"{self.model.__name__} is tenant-owned: use .for_tenant(org) "
            "(or .unscoped_all_tenants() in operator code)"
        )

    def for_tenant(self, organization: Organization | str) -> TenantQuerySet[_M]:
        """Rows of ``organization`` (an Organization or its id) only."""
        org_id = organization if isinstance(organization, str) else organization.pk
        if not org_id:
            raise UnscopedQueryError("for_tenant() needs an organisation")
        return TenantQuerySet(self.model, using=self._db).filter(organization_id=org_id)

    def unscoped_all_tenants(self) -> TenantQuerySet[_M]:
        """Every tenant's rows. For operator tools and system tasks only."""
        return TenantQuerySet(self.model, using=self._db)


class TenantModel(models.Model):
    """Abstract base of every tenant-owned model."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")

    objects = TenantManager()

    class Meta:
        abstract = True


class AuditEvent(TenantModel):
    """Who did what, when, from which key or session and IP. Append-only.

    ``action`` is a dotted name (``api_key.created``, ``membership.role_changed``,
    ``training_job.cancelled``, ``dataset.deleted``, …); ``target`` is the affected object's id.
    """

    action = models.CharField(max_length=64)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_api_key = models.ForeignKey(
        "apikeys.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target_type = models.CharField(max_length=32)
    target_id = models.CharField(max_length=64)
    data = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.action} {self.target_id}"


class Invitation(TenantModel):
    """An emailed, expiring, single-use invitation to join an organisation with a role.

    Only the SHA-256 of the token is stored; the token travels in the email only.
    """

    id = models.CharField(primary_key=True, max_length=32, default=IdFactory("inv"), editable=False)
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Membership.Role.choices)
    token_sha256 = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.email} ({self.role})"


class SupportSession(models.Model):
    """A staff user acting as a tenant user (django-hijack), with the reason they gave.

    Not tenant-owned: one session may touch several of the user's organisations; its start
    and end are recorded as audit events in each of them. ``ended_how`` is ``released`` (the
    staff user ended it) or ``expired`` (the time box ran out); empty while it lasts.
    """

    staff = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.TextField()
    elevated = models.BooleanField(default=False)
    started_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_how = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"support {self.staff_id} as {self.user_id}"
