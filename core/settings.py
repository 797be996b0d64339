"""Server settings: one pydantic-settings class, read once from flags and ``STATREPORT_*``."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.database import is_postgres_url


class Settings(BaseSettings):
    """Every setting of ``statreport serve``; built once and passed down."""

    model_config = SettingsConfigDict(env_prefix="STATREPORT_", extra="ignore")

    data_dir: Path = Field(
        Path("./statreport-data"),
        description="the DuckDB file, the self-signed certificate, the outbox",
    )
    database_url: SecretStr | None = Field(
        None,
        description="`postgresql://user:password@host/database`: keep the data in PostgreSQL, "
        "shared by any number of statreport processes (docs/operations.md, Scaling out); "
        "none: the DuckDB file in the data directory",
    )
    host: str = Field("127.0.0.1", description="listen address")
    port: int = Field(8443, ge=0, le=65535, description="listen port")
    admin_token: SecretStr | None = Field(
        None,
        description="**required**: the root staff token (name `root`, role `admin`), to "
        "bootstrap named tokens; never written to disk, "
        "checked by hash in constant time",
    )
    tls_cert: Path | None = Field(
        None,
        description="PEM certificate; none: a self-signed one is made at "
        "`<data dir>/tls/cert.pem` on first start and its SHA-256 fingerprint logged",
    )
    tls_key: Path | None = Field(
        None, description="PEM private key; none: `<data dir>/tls/key.pem`, made with the cert"
    )
    insecure_http: bool = Field(
        False, description="plain HTTP, only behind a TLS-terminating proxy (`--insecure-http`)"
    )
    trusted_proxies: str | None = Field(
        None,
        description="reverse proxies whose `X-Forwarded-For` is believed, as addresses or "
        "networks, comma-separated (`127.0.0.1`, `10.0.0.0/8`): the console's sign-in throttle "
        "then counts each client, not the proxy; none: the header is ignored",
    )

    rate_limit_per_minute: int = Field(
        120, ge=1, description="requests a minute per licence key, then 429 with `Retry-After`"
    )
    metrics_public: bool = Field(False, description="serve `/metrics` without a staff token")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="`debug`, `info`, `warning` or `error`"
    )

    commit_window_ms: float = Field(
        5.0,
        ge=0,
        le=1000,
        description="how long the writer waits for more requests to share a commit",
    )
    commit_max_reports: int = Field(5000, ge=1, description="most reports in one commit")
    max_pending_reports: int = Field(
        100_000,
        ge=1,
        description="reports waiting to commit before new ones get 503; keep it above the "
        "largest attestation bundle (16 MiB is about 60,000 reports)",
    )
    retry_after_seconds: int = Field(5, ge=1, description="`Retry-After` of a 503")
    body_timeout_seconds: float = Field(
        30, gt=0, description="a body not fully arrived by then gets 408 (4x for attestations)"
    )
    duckdb_threads: int = Field(
        1, ge=1, le=256, description="DuckDB worker threads (more slowed ingest on 2 cores)"
    )
    duckdb_memory_limit: str = Field(
        "1GiB",
        pattern=r"^[0-9]+(\.[0-9]+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="the most memory DuckDB takes (for example `512MiB`, `4GiB`); a larger "
        "query spills to `<data dir>/statreport.duckdb.tmp/`",
    )
    retention_days: int = Field(
        800,
        ge=401,
        description="raw reports older than this many days are moved, a month at a time, to "
        "Parquet under the archive directory by a daily job (at least 401: reports "
        "older than 400 days are refused anyway); instance-days are kept for ever",
    )
    archive_dir: Path | None = Field(
        None,
        description="where the archive's monthly Parquet files go; with PostgreSQL and more "
        "than one process, storage they all reach (one of them runs the job); none: "
        "`<data dir>/archive/reports/`",
    )
    archive_cron: str = Field(
        "30 2 * * *", description="when the daily archive of old raw reports runs"
    )

    smtp_host: str | None = Field(
        None,
        description="SMTP server of the weekly emails; none: `.eml` files in `<data dir>/outbox/`",
    )
    smtp_port: int = Field(587, description="SMTP port")
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="`starttls`, `tls` (implicit) or `none`"
    )
    smtp_user: str | None = Field(None, description="SMTP login, when the server wants one")
    smtp_password: SecretStr | None = Field(None, description="SMTP password")
    smtp_from: str = Field("statreport@localhost", description="sender of the weekly emails")
    smtp_ca_cert: Path | None = Field(
        None, description="a private CA for the SMTP server's certificate; none: the system CAs"
    )
    smtp_timeout_seconds: float = Field(30, gt=0, description="per SMTP conversation")
    report_cc: str | None = Field(None, description="an address that gets a digest of all accounts")
    vendor_name: str | None = Field(
        None,
        max_length=200,
        description="who the customer statements are from (your company), printed on each",
    )
    vendor_contact: str | None = Field(
        None,
        max_length=200,
        description="whom a customer asks about a statement (an address, a phone number), "
        "printed on each",
    )
    public_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        validation_alias=AliasChoices(
            "public_url", "statreport_public_url", "statreport_console_url"
        ),
        description="the address people reach statreport at (for example "
        "`https://statreport.vendor.example`); the weekly emails and webhooks then link each "
        "finding to its evidence in the console. Still read under its old name, "
        "`STATREPORT_CONSOLE_URL`",
    )
    webhook_allow_private: bool = Field(
        False,
        description="let webhooks reach loopback, private and link-local addresses, over "
        "`http` too: a receiver inside the licensor's network, or a test's",
    )
    webhook_retry_schedule: str = Field(
        "5,300,1800,7200,18000,36000,50400,72000,86400",
        description="seconds before each retry of a failed webhook delivery, comma-separated "
        "(each ±10 % jitter); after the last, the delivery has failed",
    )
    report_timezone: str = Field(
        "UTC", description="time zone of both crons (daylight saving time included)"
    )
    report_cron: str = Field("0 7 * * mon", description="when the weekly report is sent")
    evaluation_cron: str = Field(
        "0 1 * * *", description="when the daily evaluation (as of yesterday) runs"
    )
    min_free_disk_mb: int = Field(
        64,
        ge=0,
        description="`/readyz` answers 503 while the data directory's disk has less free "
        "space than this (MiB)",
    )
    max_connections: int = Field(
        1000,
        ge=1,
        description="open connections beyond this close an idle keep-alive connection, or are "
        "closed as they arrive when none is idle; keep it under the process's file descriptor "
        "limit",
    )
    backup_dir: Path | None = Field(
        None,
        description="where backups are written, each under the file name its request gives; "
        "none: `<data dir>/backups/`",
    )
    scheduler_enabled: bool = Field(
        True, description="`false` runs no job; the API can still run both"
    )

    @property
    def postgres_url(self) -> str | None:
        """The PostgreSQL database to keep the data in, if one was given."""
        return None if self.database_url is None else self.database_url.get_secret_value()

    @property
    def database_path(self) -> Path:
        """Where the DuckDB file lives."""
        return self.data_dir / "statreport.duckdb"

    @property
    def archive_path(self) -> Path:
        """Where raw reports older than the retention are kept, one Parquet file a month."""
        return self.archive_dir or self.data_dir / "archive" / "reports"

    @property
    def backups_path(self) -> Path:
        """The one folder backups are written to."""
        return self.backup_dir or self.data_dir / "backups"

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: str | None) -> str | None:
        """Each entry an address or a network, as uvicorn's proxy-header middleware reads them."""
        if value is None or not value.strip():
            return None
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        for entry in entries:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    "must be addresses or networks, comma-separated, such as 127.0.0.1 or "
                    "10.0.0.0/8"
                ) from None
        return ",".join(entries)

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        """Positive whole seconds, comma-separated, at least one."""
        try:
            delays = [int(part) for part in value.split(",")]
        except ValueError:
            delays = []
        if not delays or any(delay <= 0 for delay in delays):
            raise ValueError("must be positive whole seconds, comma-separated, such as 5,300,1800")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        """Only PostgreSQL is served from a URL; DuckDB is the data directory's file."""
        if value is None or not value.get_secret_value().strip():
            return None
        if not is_postgres_url(value.get_secret_value()):
            raise ValueError(
                "must be a postgresql:// URL, such as "
                "postgresql://statreport@db.example.com/statreport; leave it unset to keep "
                "the data in the DuckDB file of the data directory"
            )
        return value

    @property
    def retry_delays(self) -> list[int]:
        """The webhook retry schedule, in seconds."""
        return [int(part) for part in self.webhook_retry_schedule.split(",")]

    @property
    def cert_path(self) -> Path:
        """The TLS certificate in use (configured, or the self-signed default)."""
        return self.tls_cert or self.data_dir / "tls" / "cert.pem"

    @property
    def key_path(self) -> Path:
        """The TLS private key in use (configured, or the self-signed default)."""
        return self.tls_key or self.data_dir / "tls" / "key.pem"
