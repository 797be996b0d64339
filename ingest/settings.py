"""Server settings: one pydantic-settings class, read once from flags and ``STATREPORT_*``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting of ``statreport serve``; built once and passed down."""

    model_config = SettingsConfigDict(env_prefix="STATREPORT_", extra="ignore")

    data_dir: Path = Path("./statreport-data")
    host: str = "127.0.0.1"
    port: int = Field(default=8443, ge=0, le=65535)
    admin_token: SecretStr | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    insecure_http: bool = False

    rate_limit_per_minute: int = Field(default=120, ge=1)
    metrics_public: bool = False
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    commit_window_ms: float = Field(default=2.0, ge=0, le=1000)
    commit_max_reports: int = Field(default=5000, ge=1)
    # Above the largest attestation bundle (16 MiB is about 60,000 reports).
    max_pending_reports: int = Field(default=100_000, ge=1)
    retry_after_seconds: int = Field(default=5, ge=1)
    body_timeout_seconds: float = Field(default=30, gt=0)
    duckdb_threads: int = Field(default=1, ge=1, le=256)

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "statreport@localhost"
    smtp_ca_cert: Path | None = None
    smtp_timeout_seconds: float = Field(default=30, gt=0)
    report_cc: str | None = None
    report_timezone: str = "UTC"
    report_cron: str = "0 7 * * mon"
    evaluation_cron: str = "0 1 * * *"
    scheduler_enabled: bool = True

    @property
    def database_path(self) -> Path:
        """Where the DuckDB file lives."""
        return self.data_dir / "statreport.duckdb"

    @property
    def cert_path(self) -> Path:
        """The TLS certificate in use (configured, or the self-signed default)."""
        return self.tls_cert or self.data_dir / "tls" / "cert.pem"

    @property
    def key_path(self) -> Path:
        """The TLS private key in use (configured, or the self-signed default)."""
        return self.tls_key or self.data_dir / "tls" / "key.pem"
