"""Artifacts in S3-compatible object storage: django-storages against moto's server on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from saas.common.storage import local_copy
from tests.deploy.conftest import BUCKET


def test_objects_round_trip_and_local_copy_streams_to_a_temp_file(s3: str) -> None:
    key = default_storage.save("org-1/datasets/d.csv", ContentFile(b"a,b\n1,2\n"))
    assert key == "org-1/datasets/d.csv"
    obj = boto3.client(
        "s3",
        endpoint_url=s3,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).get_object(Bucket=BUCKET, Key=key)
    assert obj["Body"].read() == b"a,b\n1,2\n"
    with local_copy(key, suffix=".csv") as path:
        assert path.endswith(".csv")
        with open(path, "rb") as fh:
            assert fh.read() == b"a,b\n1,2\n"
    assert not os.path.exists(path)
    # As with the filesystem backend, a clash gets a new name rather than overwriting.
    assert default_storage.save(key, ContentFile(b"x")) != key
    default_storage.delete(key)
    assert not default_storage.exists(key)


def test_settings_switch_to_s3_when_a_bucket_is_named() -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "saas.settings",
        "TRAINYARD_S3_BUCKET": "b1",
        "TRAINYARD_S3_ENDPOINT_URL": "http://minio:9000",
        "TRAINYARD_S3_ADDRESSING_STYLE": "path",
    }
    code = "from django.conf import settings; import json; print(json.dumps(settings.STORAGES['default']))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    default = json.loads(out.stdout.strip().splitlines()[-1])
    assert default["BACKEND"] == "storages.backends.s3.S3Storage"
    opts = default["OPTIONS"]
    assert opts["bucket_name"] == "b1" and opts["endpoint_url"] == "http://minio:9000"
    assert opts["addressing_style"] == "path" and opts["default_acl"] == "private"
    assert opts["access_key"] is None  # boto3's own credential chain
