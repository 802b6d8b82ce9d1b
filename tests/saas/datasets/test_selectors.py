"""Dataset reads agree with upload validation and training: the sample rows and images shown
on the dataset page are read with the contract's parsers, not a reader of their own."""

from __future__ import annotations

import pytest

from saas.datasets.selectors import dataset_get, dataset_sample_images, dataset_sample_rows
from tests.conftest import image_zip, png_bytes, upload

pytestmark = pytest.mark.django_db


def test_sample_rows_follow_the_contracts_csv_rules(tenant):
    # A spaced header, a separators-only row and a quoted text holding a newline.
    body = "text, label\n" + "".join(
        f'"good {i}",pos\n,\n"bad\nline {i}", neg \n' for i in range(8)
    )
    r = upload(tenant.client, body.encode())
    assert r.status_code == 201, r.content
    ds = dataset_get(organization=tenant.org, dataset_id=r.json()["id"])
    rows = dataset_sample_rows(dataset=ds, limit=4)
    assert len(rows) == 4
    assert {row["label"] for row in rows} == {"pos", "neg"}  # stripped, never ""
    assert all(row["text"].strip() for row in rows)
    assert {row["label"] for row in rows} == set(r.json()["classes"])


def test_sample_images_use_the_classes_upload_found(tenant):
    files = {f"a//{i}.png": png_bytes(i) for i in range(3)}
    files |= {f"b/{i}.PNG": png_bytes(100 + i) for i in range(3)}
    files |= {"__MACOSX/a/._0.png": b"resource fork"}
    r = upload(tenant.client, image_zip(files), task="image-classification", name="imgs.zip")
    assert r.status_code == 201, r.content
    ds = dataset_get(organization=tenant.org, dataset_id=r.json()["id"])
    picks = dataset_sample_images(dataset=ds)
    assert {label for _, label in picks} == set(r.json()["classes"]) == {"a", "b"}
    assert len(picks) == 6 and all("__MACOSX" not in name for name, _ in picks)
