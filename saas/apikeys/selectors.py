"""Reads of API keys, tenant-scoped."""

from django.db.models import QuerySet

from saas.common.errors import NotFound

from .models import ApiKey


def api_key_list(
    *, organization_id: str, created_by_id: int | None = None, active_only: bool = False
) -> QuerySet[ApiKey]:
    """Keys of the organisation, or only those ``created_by_id`` made (newest first); with
    ``active_only``, not revoked."""
    qs = ApiKey.objects.for_tenant(organization_id).select_related("created_by")
    if active_only:
        qs = qs.filter(revoked_at__isnull=True)
    return qs if created_by_id is None else qs.filter(created_by_id=created_by_id)


def api_key_get(*, organization_id: str, key_id: str, created_by_id: int | None = None) -> ApiKey:
    """Raises NotFound if missing, another tenant's, or (with ``created_by_id``) someone else's."""
    key = (
        api_key_list(organization_id=organization_id, created_by_id=created_by_id)
        .filter(pk=key_id)
        .first()
    )
    if key is None:
        raise NotFound(f"No API key {key_id!r}.")
    return key
