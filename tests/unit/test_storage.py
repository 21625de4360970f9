"""The storage of uploaded files: the local-disk default really writes, reads and forgets
bytes by key; no key leaves its store; the environment chooses an S3-compatible store."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from infra.storage import (
    BadKey,
    LocalDiskStorage,
    StorageSettings,
    storage_from_environment,
)


def test_bytes_are_put_read_and_deleted_by_key(tmp_path):
    store = LocalDiskStorage(tmp_path / "storage")
    key = "listings/7c6f3a52-0000-4000-8000-000000000001/ab12.jpg"
    assert store.get(key) is None and not store.exists(key)
    store.put(key, b"first", "image/jpeg")
    store.put(key, b"second", "image/jpeg")  # replaced, in one piece
    assert store.get(key) == b"second" and store.exists(key)
    assert [p.name for p in (tmp_path / "storage").rglob("*") if p.is_file()] == ["ab12.jpg"]
    store.delete(key)
    store.delete(key)  # nothing there is no error
    assert store.get(key) is None


@pytest.mark.parametrize(
    "key",
    ["../escape.jpg", "/etc/passwd", "listings/../../x", "a//b", "a/.hidden", "", "a\\b", "é.jpg"],
)
def test_a_key_never_leaves_its_store(tmp_path, key):
    store = LocalDiskStorage(tmp_path)
    with pytest.raises(BadKey):
        store.put(key, b"x", "image/jpeg")
    with pytest.raises(BadKey):
        store.get(key)


def test_the_environment_chooses_the_store(tmp_path, monkeypatch):
    monkeypatch.setenv("STORAGE_LOCAL_DIR", str(tmp_path))
    local = storage_from_environment()
    assert isinstance(local, LocalDiskStorage) and local.root == tmp_path

    monkeypatch.setenv("STORAGE_BACKEND", "s3")
    with pytest.raises(ValueError, match="STORAGE_S3_BUCKET"):
        storage_from_environment()
    with pytest.raises(ValueError):
        StorageSettings(s3_prefix="../")


# in its own process, eventlet patched first as in `mutualis serve` (pytest imported ssl
# before the suite patched it, and botocore's TLS context then recurses)
S3_FROM_ENVIRONMENT = """
import eventlet
eventlet.monkey_patch()
from infra.storage import S3Storage, storage_from_environment
s3 = storage_from_environment()
assert isinstance(s3, S3Storage)
print(s3.bucket, s3.prefix, s3.client.meta.endpoint_url, s3.client.meta.region_name,
      s3._key("listings/a.jpg"))
"""


def test_an_s3_compatible_store_is_configured_by_the_environment(monkeypatch):
    environment = os.environ | {
        "STORAGE_BACKEND": "s3",
        "STORAGE_S3_BUCKET": "mutualis-photos",
        "STORAGE_S3_ENDPOINT_URL": "https://s3.fr-par.scw.cloud",
        "STORAGE_S3_REGION": "fr-par",
        "STORAGE_S3_ACCESS_KEY_ID": "key-id",
        "STORAGE_S3_SECRET_ACCESS_KEY": "secret",
        "STORAGE_S3_PREFIX": "prod/",
        "PYTHONWARNINGS": "ignore",
    }
    done = subprocess.run(
        [sys.executable, "-c", S3_FROM_ENVIRONMENT],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.split() == [
        "mutualis-photos",
        "prod/",
        "https://s3.fr-par.scw.cloud",
        "fr-par",
        "prod/listings/a.jpg",
    ]
