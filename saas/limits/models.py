"""Stored responses of POST requests that carried an ``Idempotency-Key``."""

from django.db import models

from saas.tenancy.models import TenantModel


class IdempotencyRecord(TenantModel):
    """One (organisation, route, key): the request's fingerprint and, once done, its response.

    ``response_status`` is None while the first request is still being handled (in flight).
    Kept ``TRAINYARD_IDEMPOTENCY_TTL_SECONDS`` (24 h), then purged.
    """

    key = models.CharField(max_length=255)
    route = models.CharField(max_length=255)
    request_sha256 = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        # The table keeps the name it had under saas.api, so moving the model moved no data.
        db_table = "api_idempotencyrecord"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "route", "key"], name="uniq_idempotency_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.route} {self.key}"
