"""Datasets: a validated upload (CSV of text,label or ZIP of class folders) and its report."""

from django.conf import settings
from django.db import models

from saas.common.ids import IdFactory
from saas.contract import IMAGE, TEXT
from saas.tenancy.models import TenantModel


class Task(models.TextChoices):
    TEXT_CLASSIFICATION = TEXT  # the contract's task names
    IMAGE_CLASSIFICATION = IMAGE


class Dataset(TenantModel):
    """An uploaded, validated dataset. The file lives in storage under ``storage_key``."""

    class Status(models.TextChoices):
        READY = "ready"
        DELETED = "deleted"

    id = models.CharField(primary_key=True, max_length=32, default=IdFactory("ds"), editable=False)
    name = models.CharField(max_length=200)
    task = models.CharField(max_length=32, choices=Task.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.READY)
    num_examples = models.PositiveIntegerField()
    classes = models.JSONField()  # {label: count}
    report = models.JSONField()
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    storage_key = models.CharField(max_length=500)
    text_column = models.CharField(max_length=200, blank=True, default="")
    label_column = models.CharField(max_length=200, blank=True, default="")
    created_by_key = models.ForeignKey(
        "apikeys.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The user behind the request: the signed-in user, or the user who issued the API key.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.id} ({self.name})"
