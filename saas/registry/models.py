"""Trained models: the SavedModel artifact of a succeeded job, its classes and metrics."""

from django.db import models

from saas.common.ids import IdFactory
from saas.tenancy.models import TenantModel


class TrainedModel(TenantModel):
    """A servable model. The artifact is a ``.tar.gz`` of the SavedModel in storage.

    Exactly one per succeeded job (unique ``job``), so a redelivered completion cannot make two.

    Deleting a model (``model_delete``) removes its artifact and sets ``deleted_at``; the row
    stays, so the job still cannot register a second one and the audit trail keeps its target.
    Every read but the deletion itself skips deleted models.
    """

    id = models.CharField(primary_key=True, max_length=32, default=IdFactory("mdl"), editable=False)
    job = models.OneToOneField("jobs.TrainingJob", on_delete=models.PROTECT, related_name="+")
    task = models.CharField(max_length=32)
    base_model = models.CharField(max_length=64)
    classes = models.JSONField()
    metrics = models.JSONField()
    version = models.PositiveIntegerField(default=1)
    artifact_key = models.CharField(max_length=500)
    artifact_bytes = models.BigIntegerField()
    artifact_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return self.id
