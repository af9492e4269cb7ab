"""The service's settings: one pydantic-settings class read from `CUSTODY_*` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

GIB = 1024**3


class Settings(BaseSettings):
    """Everything is optional: the defaults are the embedded deployment under `data_dir`."""

    model_config = SettingsConfigDict(env_prefix="CUSTODY_", extra="ignore")

    data_dir: Path = Path("custody-data")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default SQLite in data_dir, e.g. postgresql+psycopg://...",
    )
    storage_backend: Literal["local", "s3"] = "local"
    storage_path: Path | None = Field(default=None, description="local store root")
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_create_bucket: bool = False
    s3_part_size: int = Field(default=64 * 1024**2, ge=5 * 1024**2)
    # COMPLIANCE retention of originals; nobody can shorten it once written. Ten years
    # covers the limitation periods of most international proceedings.
    retention_seconds: int = Field(default=10 * 365 * 86400, ge=1)
    max_upload_bytes: int = Field(default=64 * GIB, ge=1)
    extra_digests: Annotated[list[str], NoDecode] = Field(default_factory=list)
    staging_dir: Path | None = None

    @field_validator("extra_digests", mode="before")
    @classmethod
    def _split_digests(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip().lower() for v in value.split(",") if v.strip()]
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'custody.db').resolve()}"

    @property
    def resolved_storage_path(self) -> Path:
        return self.storage_path or self.data_dir / "objects"

    @property
    def resolved_staging_dir(self) -> Path:
        return self.staging_dir or self.data_dir / "staging"
