"""Choosing the object store the settings name (the API's one place that builds adapters)."""

from __future__ import annotations

from api.settings import Settings
from storage import ObjectStore
from storage.local import LocalObjectStore
from storage.s3 import S3ObjectStore


def build_store(settings: Settings) -> ObjectStore:
    if settings.storage_backend == "local":
        return LocalObjectStore(settings.resolved_storage_path)
    if not settings.s3_bucket:
        raise ValueError("CUSTODY_S3_BUCKET is required when CUSTODY_STORAGE_BACKEND=s3")
    secret = settings.s3_secret_access_key
    return S3ObjectStore.from_settings(
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=secret.get_secret_value() if secret else None,
        bucket=settings.s3_bucket,
        prefix=settings.s3_prefix,
        part_size=settings.s3_part_size,
        multipart_threshold=settings.s3_part_size,
    )


def prepare_store(settings: Settings, store: ObjectStore) -> None:
    """Start-up work on the store: create the S3 bucket, with object lock, when asked to."""
    if settings.s3_create_bucket and isinstance(store, S3ObjectStore):
        store.ensure_bucket(object_lock=True)
