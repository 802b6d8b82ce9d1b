"""Reads for datasets, always tenant-scoped."""

import io
import itertools
import zipfile

from django.core.files.storage import default_storage
from django.db.models import QuerySet
from PIL import Image

from saas.common.errors import NotFound
from saas.contract.datasets import ImageMember, image_members, iter_text_examples
from saas.tenancy.models import Organization

from .models import Dataset, Task


def dataset_list(*, organization: Organization) -> QuerySet[Dataset]:
    """The organisation's live datasets, newest first (a QuerySet)."""
    return Dataset.objects.for_tenant(organization).exclude(status=Dataset.Status.DELETED)


def dataset_get(*, organization: Organization, dataset_id: str) -> Dataset:
    """One live dataset. Raises NotFound if missing, deleted or another tenant's."""
    ds = dataset_list(organization=organization).filter(pk=dataset_id).first()
    if ds is None:
        raise NotFound(f"No dataset {dataset_id!r}.")
    return ds


def dataset_sample_rows(*, dataset: Dataset, limit: int = 12) -> list[dict]:
    """Up to ``limit`` rows ``{"text", "label"}`` of a text dataset, spread over its classes
    (texts cut at 300 characters). Streams the stored CSV through the contract's parser (the
    rows upload validation counted and training uses, nothing else) and stops early."""
    per_class = max(1, limit // max(1, len(dataset.classes)))
    taken: dict[str, int] = {}
    out: list[dict] = []
    with default_storage.open(dataset.storage_key, "rb") as fh:
        examples = iter_text_examples(
            io.TextIOWrapper(fh, encoding="utf-8-sig", newline=""),
            text_column=dataset.text_column,
            label_column=dataset.label_column,
        )
        for example in itertools.islice(examples, 20000):
            if taken.get(example.label, 0) >= per_class:
                continue
            taken[example.label] = taken.get(example.label, 0) + 1
            out.append({"text": example.text[:300], "label": example.label})
            if len(out) >= limit:
                break
    return out


def dataset_sample_images(*, dataset: Dataset, limit: int = 24) -> list[tuple[str, str]]:
    """``(member path, class)`` of up to ``limit`` images of an image dataset, round-robin over
    its classes (reads only the ZIP's directory). Empty for a text dataset."""
    if dataset.task != Task.IMAGE_CLASSIFICATION:
        return []
    by_class: dict[str, list[str]] = {}
    with default_storage.open(dataset.storage_key, "rb") as fh, zipfile.ZipFile(fh) as zf:
        for member in image_members(zf.namelist()):
            if isinstance(member, ImageMember):  # the contract's rule, as at upload
                by_class.setdefault(member.label, []).append(member.name)
    rounds = itertools.zip_longest(
        *([(n, label) for n in sorted(v)] for label, v in sorted(by_class.items()))
    )
    picks = [pick for group in rounds for pick in group if pick is not None]
    return picks[:limit]


def dataset_thumbnail_png(*, dataset: Dataset, n: int, size: int = 96) -> bytes | None:
    """The ``n``-th sample image (see :func:`dataset_sample_images`) as a PNG whose longer
    side is ``size`` pixels (nearest-neighbour when enlarging, so tiny images stay sharp), or
    None if there is no such sample."""
    members = dataset_sample_images(dataset=dataset)
    if not 0 <= n < len(members):
        return None
    with default_storage.open(dataset.storage_key, "rb") as fh, zipfile.ZipFile(fh) as zf:
        with zf.open(members[n][0]) as member, Image.open(member) as original:
            img = original.convert("RGB")
            scale = size / max(img.size)
            dims = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
            resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS
            out = io.BytesIO()
            img.resize(dims, resample).save(out, "PNG")
    return out.getvalue()
