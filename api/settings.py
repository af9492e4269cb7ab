"""The service's settings: one pydantic-settings class read from `CUSTODY_*` variables."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from custody.tsp import DEFAULT_POLICY

GIB = 1024**3


class Settings(BaseSettings):
    """Everything is optional: the defaults are the embedded deployment under `data_dir`."""

    model_config = SettingsConfigDict(env_prefix="CUSTODY_", extra="ignore")

    data_dir: Path = Path("custody-data")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default SQLite in data_dir, e.g. postgresql+psycopg://...",
    )
    database_pool_size: int = Field(
        default=20,
        ge=1,
        le=500,
        description="PostgreSQL connections each process keeps (as many again at peak)",
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
    auth_cache_seconds: float = Field(
        default=0.0,
        ge=0,
        le=300,
        description="trust a checked token this long without a database lookup (0: never, "
        "the default); a token revoked by another process keeps working up to this long",
    )

    # The custody log (C2SP tlog-tiles under log_prefix in the object store).
    log_prefix: str = Field(default="log/", pattern=r"^([a-z0-9._-]+/)*$")
    log_origin: str | None = Field(
        default=None, description="checkpoint origin and key name; default custody.<hostname>"
    )
    log_private_key: SecretStr | None = Field(
        default=None, description="PRIVATE+KEY+... (Go note format); default a key file"
    )
    log_key_file: Path | None = Field(default=None, description="default data_dir/keys/log.key")
    log_batch_size: int = Field(default=256, ge=1, le=65536)
    log_batch_delay_ms: int = Field(default=50, ge=0, le=60000)
    log_poll_ms: int = Field(default=50, ge=5, le=10000)
    log_lease_seconds: float = Field(default=10.0, gt=0.5)
    receipt_wait_seconds: float = Field(default=2.0, ge=0, le=30)
    integrator_enabled: bool = True
    # Off by default: an access log keeps every client's address and every path it asked
    # for (case ids, evidence hashes) in a plain file on a server that may be seized.
    access_log: bool = Field(
        default=False, description="log every request with the client's address (uvicorn)"
    )
    log_public: bool = Field(
        default=False,
        description="serve entries, tiles, bundles and inclusion proofs without a token",
    )
    hash_lookup_enabled: bool = Field(
        default=False, description="GET /v1/log/lookup/{sha256}: is this hash in the log?"
    )
    hash_lookup_per_minute: int = Field(default=30, ge=1, le=100000)
    auth_failures_per_minute: int = Field(
        default=10, ge=1, le=100000, description="failed authentications per client, then 429"
    )
    # Rate limits are per client address. Behind a reverse proxy every request comes from the
    # proxy, so unless the proxy is trusted to name the client (X-Forwarded-For), one
    # stranger's failed guesses would lock every user out.
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For "
        "names the client; '*' trusts any peer",
    )

    # Trusted time: RFC 3161 timestamps over every archived checkpoint.
    tsa_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["builtin"],
        description="TSAs to timestamp checkpoints with: 'builtin' and/or [name=]https://... URLs",
    )
    tsa_trust_anchors: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="PEM files of root certificates trusted for external TSAs",
    )
    tsa_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    tsa_retry_max_seconds: float = Field(default=60.0, ge=0.1, le=86400)
    tsa_key_file: Path | None = Field(
        default=None, description="PEM private key of the built-in TSA; default data_dir/keys"
    )
    tsa_chain_file: Path | None = Field(
        default=None, description="PEM chain of the built-in TSA, its certificate first"
    )
    tsa_policy_oid: str = Field(default=DEFAULT_POLICY, pattern=r"^[0-2](\.(0|[1-9][0-9]*))+$")
    tsa_name: str | None = Field(
        default=None, description="the built-in TSA's common name; default from the origin"
    )
    tsa_server_enabled: bool = Field(default=True, description="serve POST /tsa")

    # Exhibit bundles (BagIt) for courts.
    organisation: str | None = Field(
        default=None, description="who signs exhibit bundles; default from the log origin"
    )
    organisation_key_file: Path | None = Field(
        default=None,
        description="PEM Ed25519 key that signs bundles' tag manifests; default data_dir/keys",
    )
    export_max_items: int = Field(default=10_000, ge=1, le=1_000_000)
    export_log_wait_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="wait for a checkpoint over the export's entries"
    )
    export_timestamp_wait_seconds: float = Field(
        default=10.0, ge=0, le=3600, description="wait for RFC 3161 tokens over that checkpoint"
    )
    export_stale_seconds: float = Field(
        default=300.0,
        gt=0,
        description="a building export silent this long was interrupted and is built again",
    )
    certificate_font_dir: Path | None = Field(
        default=None, description="DejaVu TTFs for the certificate PDF; default the system's"
    )

    @field_validator("extra_digests", mode="before")
    @classmethod
    def _split_digests(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip().lower() for v in value.split(",") if v.strip()]
        return value

    @field_validator("tsa_urls", "tsa_trust_anchors", "forwarded_allow_ips", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _check_hosts(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if host == "*":
                continue
            try:
                ipaddress.ip_network(host)
            except ValueError as exc:
                raise ValueError(
                    f"{host!r} is neither an IP address, a network such as 10.0.0.0/8, nor '*'"
                ) from exc
        return hosts

    @property
    def resolved_tsa_key_file(self) -> Path:
        return self.tsa_key_file or self.data_dir / "keys" / "tsa.pem"

    @property
    def resolved_organisation(self) -> str:
        return self.organisation or self.resolved_log_origin

    @property
    def resolved_organisation_key_file(self) -> Path:
        return self.organisation_key_file or self.data_dir / "keys" / "organisation.pem"

    @property
    def resolved_tsa_name(self) -> str:
        return self.tsa_name or f"Custody TSA {self.resolved_log_origin}"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'custody.db').resolve()}"

    @property
    def resolved_storage_path(self) -> Path:
        return self.storage_path or self.data_dir / "objects"

    @property
    def resolved_log_origin(self) -> str:
        return self.log_origin or f"custody.{socket.gethostname().lower()}"

    @property
    def resolved_log_key_file(self) -> Path:
        return self.log_key_file or self.data_dir / "keys" / "log.key"

    @property
    def resolved_staging_dir(self) -> Path:
        return self.staging_dir or self.data_dir / "staging"
