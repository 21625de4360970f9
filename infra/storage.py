"""Where uploaded files' bytes live (listings' photos): one small interface, put/get/delete
by key, with a local-disk default under var/ and an S3-compatible backend for deployments
(AWS S3, MinIO, Garage, Ceph RGW, Scaleway, OVHcloud…), chosen by the environment:

    STORAGE_BACKEND=s3  STORAGE_S3_BUCKET=…  STORAGE_S3_ENDPOINT_URL=https://…
    STORAGE_S3_ACCESS_KEY_ID=…  STORAGE_S3_SECRET_ACCESS_KEY=…  [STORAGE_S3_REGION=…]

Keys are relative paths of plain names ("listings/<id>/<digest>.jpg"): never absolute, never
"..", so a key cannot leave its store whichever backend holds it."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Literal, Protocol

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.settings import VAR_DIR

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)*$")
MAX_KEY_LENGTH = 200


class BadKey(ValueError):
    """A key that is no relative path of plain names."""


def checked_key(key: str) -> str:
    if len(key) > MAX_KEY_LENGTH or not _KEY.match(key) or ".." in key:
        raise BadKey(f"not a storage key: {key!r}")
    return key


class Storage(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Stores `data` under `key` (replacing what was there)."""

    def get(self, key: str) -> bytes | None:
        """The bytes under `key`, None when there are none."""

    def delete(self, key: str) -> None:
        """Forgets `key`; nothing there is no error."""

    def exists(self, key: str) -> bool: ...


class LocalDiskStorage:
    """Files under a directory (var/storage by default): one replica, or a shared volume."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / checked_key(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # written aside then renamed: a reader never sees half a file
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()


class S3Storage:
    """Objects in a bucket of any S3-compatible store, through boto3 (path-style addressing
    when an endpoint is given: most self-hosted stores want it)."""

    def __init__(self, client, bucket: str, prefix: str = ""):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> S3Storage:
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url or None,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id or None,
            aws_secret_access_key=settings.s3_secret_access_key or None,
            config=Config(
                s3={"addressing_style": "path" if settings.s3_endpoint_url else "auto"},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )
        return cls(client, settings.s3_bucket, settings.s3_prefix)

    def _key(self, key: str) -> str:
        return self.prefix + checked_key(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type
        )

    def get(self, key: str) -> bytes | None:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.NoSuchKey:
            return None
        return answer["Body"].read()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True


class StorageSettings(BaseSettings):
    """STORAGE_*: which store holds uploaded files."""

    model_config = SettingsConfigDict(env_prefix="STORAGE_", extra="ignore")

    backend: Literal["local", "s3"] = "local"
    local_dir: Path = VAR_DIR / "storage"
    s3_endpoint_url: str = ""  # empty: AWS itself
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""  # empty: boto3's usual chain (role, profile, environment)
    s3_secret_access_key: str = ""
    s3_prefix: str = Field(default="", pattern=r"^([A-Za-z0-9][A-Za-z0-9_.-]*/)*$")


def storage_from_environment(settings: StorageSettings | None = None) -> Storage:
    settings = settings or StorageSettings()
    if settings.backend == "s3":
        if not settings.s3_bucket:
            raise ValueError("STORAGE_BACKEND=s3 needs STORAGE_S3_BUCKET")
        return S3Storage.from_settings(settings)
    return LocalDiskStorage(settings.local_dir)
