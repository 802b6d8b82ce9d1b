"""Writes for datasets: validate, store, record — all or nothing."""

from __future__ import annotations

import hashlib
from typing import BinaryIO

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from saas.common.actor import Actor
from saas.common.errors import Conflict, PayloadTooLarge, ValidationFailed
from saas.common.ids import new_id
from saas.tenancy.audit import audit_record
from saas.tenancy.models import Organization

from .models import Dataset, Task
from .signals import dataset_deleted
from .validation import validate_image_zip, validate_text_csv


def dataset_storage_key(*, organization_id: str, dataset_id: str, task: str) -> str:
    """Where a dataset's file lives in storage: keyed by tenant and id, never by user names."""
    ext = "csv" if task == Task.TEXT_CLASSIFICATION else "zip"
    return f"tenants/{organization_id}/datasets/{dataset_id}/data.{ext}"


def dataset_create(
    *,
    organization: Organization,
    file: BinaryIO,
    size: int,
    task: str,
    name: str,
    text_column: str = "text",
    label_column: str = "label",
    max_classes: int | None = None,
    actor: Actor,
) -> Dataset:
    """Validate an upload, store it and create the :class:`Dataset` (status ``ready``).

    Args:
        file: a seekable binary file (Django's UploadedFile), ``size`` its length in bytes.
        task: ``text-classification`` or ``image-classification``.
        max_classes: the organisation's plan's class limit (the HTTP layers pass
            ``PlanLimits.max_classes``; billing sits above this app); None: no limit.
        actor: who uploads it: stored as ``created_by`` / ``created_by_key`` and audited
            (``dataset.created``) in the same transaction.

    Raises:
        PayloadTooLarge: ``size`` over ``TRAINYARD_MAX_UPLOAD_BYTES`` (413).
        BudgetExceeded: over a validation budget (rows, pixels, entries, bytes; 413 naming it).
        TooManyClasses: more classes than ``max_classes`` (422).
        ValidationFailed: the file cannot be trained on; every problem is listed (400).

    Nothing is stored when validation fails; if the database write fails after the file was
    stored, the file is removed again.
    """
    # The name defaults to the upload's file name, which no serializer has measured: cut it to
    # the column rather than let the database refuse it (a 500).
    name = name[: Dataset._meta.get_field("name").max_length]
    limit = settings.TRAINYARD_MAX_UPLOAD_BYTES
    if size > limit:
        raise PayloadTooLarge(
            f"The file is {size} bytes; the limit is {limit} bytes.", limit_bytes=limit
        )
    if task not in Task.values:
        raise ValidationFailed(
            "Unknown task.",
            errors=[{"field": "task", "message": f"must be one of {', '.join(Task.values)}"}],
        )
    file.seek(0)
    if task == Task.TEXT_CLASSIFICATION:
        validated = validate_text_csv(
            file, text_column=text_column, label_column=label_column, max_classes=max_classes
        )
    else:
        validated = validate_image_zip(file, max_classes=max_classes)

    file.seek(0)
    digest = hashlib.sha256()
    while chunk := file.read(1 << 20):
        digest.update(chunk)
    file.seek(0)

    dataset_id = new_id("ds")
    key = dataset_storage_key(organization_id=organization.pk, dataset_id=dataset_id, task=task)
    stored_key = default_storage.save(key, File(file))
    try:
        with transaction.atomic():
            dataset = Dataset.objects.for_tenant(organization).create(
                id=dataset_id,
                organization=organization,
                name=name,
                task=task,
                num_examples=validated.num_examples,
                classes=validated.classes,
                report=validated.report,
                size_bytes=size,
                sha256=digest.hexdigest(),
                storage_key=stored_key,
                text_column=text_column if task == Task.TEXT_CLASSIFICATION else "",
                label_column=label_column if task == Task.TEXT_CLASSIFICATION else "",
                created_by_key_id=actor.api_key_id,
                created_by_id=actor.user_id,
            )
            audit_record(
                organization_id=organization.pk,
                action="dataset.created",
                actor=actor,
                target_type="dataset",
                target_id=dataset.pk,
                name=name,
                task=task,
                size_bytes=size,
            )
            return dataset
    except BaseException:
        default_storage.delete(stored_key)
        raise


# ``TrainingJob.ACTIVE_STATUSES`` by value: jobs depends on datasets, so datasets names the
# statuses instead of importing them (tests/saas/datasets/test_services.py checks the two agree).
JOB_ACTIVE_STATUSES = ("queued", "running")


@transaction.atomic
def dataset_delete(*, dataset: Dataset, actor: Actor) -> None:
    """Delete a dataset's file and mark it ``deleted`` (jobs that used it keep their history).

    Audited as ``dataset.deleted`` with ``actor``. In the same transaction the receivers of
    :data:`~saas.datasets.signals.dataset_deleted` delete what was copied from the file (the
    jobs' misclassified examples); their counts go into the audit event. Raises Conflict while
    a queued or running job still needs the file.
    """
    scoped = Dataset.objects.for_tenant(dataset.organization_id)
    locked = scoped.select_for_update().get(pk=dataset.pk)
    # Through the jobs' reverse relation (``TrainingJob.dataset``'s related name), so this app
    # needs no import of the jobs app above it.
    active = scoped.filter(pk=locked.pk, training_jobs__status__in=JOB_ACTIVE_STATUSES).exists()
    if active:
        raise Conflict("A queued or running training job uses this dataset; cancel it first.")
    Dataset.objects.for_tenant(dataset.organization_id).filter(pk=dataset.pk).update(
        status=Dataset.Status.DELETED, deleted_at=timezone.now()
    )
    # What other apps copied out of the file goes with it (the jobs' misclassified examples).
    removed: dict[str, int] = {}
    for _receiver, counts in dataset_deleted.send(
        sender=Dataset, organization_id=dataset.organization_id, dataset_id=dataset.pk, actor=actor
    ):
        if isinstance(counts, dict):
            removed.update(counts)
    audit_record(
        organization_id=dataset.organization_id,
        action="dataset.deleted",
        actor=actor,
        target_type="dataset",
        target_id=dataset.pk,
        name=dataset.name,
        **removed,
    )
    key = locked.storage_key
    transaction.on_commit(lambda: default_storage.delete(key))
