"""Fixtures for the deploy tests: S3-compatible object storage (moto's server on loopback)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests
from django.test import override_settings
from moto.server import ThreadedMotoServer

BUCKET = "trainyard-test"
REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class S3:
    """A running moto S3 endpoint with one private bucket (:data:`BUCKET`)."""

    url: str
    bucket: str
    server: ThreadedMotoServer
    running: bool = True

    def stop(self) -> None:
        """Stop the endpoint (a test of what an unreachable one does); idempotent."""
        if self.running:
            self.server.stop()
            self.running = False

    def client(self) -> Any:
        """A boto3 S3 client on the endpoint: the test's own look at the bucket."""
        return boto3.client("s3", endpoint_url=self.url, region_name=REGION, **CREDENTIALS)

    def keys(self) -> list[str]:
        """Every key in the bucket."""
        listing = self.client().list_objects_v2(Bucket=self.bucket)
        return sorted(o["Key"] for o in listing.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()


def storages_for(url: str, bucket: str = BUCKET) -> dict[str, Any]:
    """``STORAGES`` with the default storage on the S3 endpoint ``url`` (as saas/settings.py
    builds it when TRAINYARD_S3_BUCKET is set)."""
    return {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": url,
                "region_name": REGION,
                "access_key": CREDENTIALS["aws_access_key_id"],
                "secret_key": CREDENTIALS["aws_secret_access_key"],
                "addressing_style": "path",
                "default_acl": "private",
                "querystring_auth": False,
                "file_overwrite": False,
            },
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def drop_storage_instances() -> None:
    """Forget every storage instance (the handler's cache and ``default_storage``'s wrapped
    object), so the next use builds one from the settings in force."""
    from django.core.files.storage import default_storage, storages
    from django.utils.functional import empty

    storages._storages.clear()  # type: ignore[attr-defined]
    default_storage._wrapped = empty  # type: ignore[attr-defined]


@pytest.fixture
def s3_server() -> Iterator[S3]:
    """A moto S3 server with an empty private bucket; STORAGES untouched."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    s3 = S3(url=f"http://127.0.0.1:{port}", bucket=BUCKET, server=server)
    # moto's backends are per process, not per server: without a reset this test would see
    # the buckets and objects earlier tests left.
    requests.post(f"{s3.url}/moto-api/reset", timeout=10).raise_for_status()
    try:
        s3.client().create_bucket(Bucket=BUCKET)
        yield s3
    finally:
        if s3.running:
            requests.post(f"{s3.url}/moto-api/reset", timeout=10).raise_for_status()
        s3.stop()


@pytest.fixture
def s3_storage(s3_server: S3) -> Iterator[S3]:
    """:func:`s3_server`, with the default storage on it for the test's length.

    No S3 backend instance outlives the test: later tests and the e2e stack's in-process reads
    use the filesystem storage again (a leaked one once broke the e2e tests)."""
    try:
        with override_settings(STORAGES=storages_for(s3_server.url)):
            drop_storage_instances()
            yield s3_server
    finally:
        drop_storage_instances()


@pytest.fixture
def s3(s3_storage: S3) -> str:
    """The S3 endpoint URL of :func:`s3_storage` (the default storage is on it meanwhile)."""
    return s3_storage.url
