"""API keys: ``ty_live_<public id>_<secret>``; only a SHA-256 digest of the secret is stored."""

from django.conf import settings
from django.db import models

from saas.common.ids import IdFactory
from saas.tenancy.models import TenantModel

SCOPES = (
    "datasets:read",
    "datasets:write",
    "training:read",
    "training:write",
    "models:predict",
    "usage:read",
)


class ApiKey(TenantModel):
    """A credential for programs. The secret is shown once, at creation."""

    id = models.CharField(primary_key=True, max_length=32, default=IdFactory("key"), editable=False)
    name = models.CharField(max_length=200, default="default")
    public_id = models.CharField(max_length=16, unique=True)
    secret_sha256 = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    monthly_spend_cap = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)

    @property
    def prefix(self) -> str:
        return f"ty_live_{self.public_id}"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"
