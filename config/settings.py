"""Runtime settings, read from the environment (prefix ``ACCOUNTFLOW_``) and ``.env``.

Secrets are ``SecretStr`` so they never print; nested groups use ``__`` in variable names
(``ACCOUNTFLOW_SMTP__HOST``). Each capability's own knobs are a settings class of their own
with its own prefix (``ACCOUNTFLOW_COMPLAINTS_*``, ...), each read once through its getter.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

CONFIG_DIR = Path(__file__).resolve().parent


class SmtpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 25
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False
    ssl: bool = False
    timeout_seconds: float = 30.0


class ImapSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 993
    username: str | None = None
    password: SecretStr | None = None
    password_block: str | None = Field(
        default=None, description="Name of a Prefect Secret block holding the password."
    )
    security: str = Field(default="ssl", pattern="^(ssl|starttls|plain)$")
    mailbox: str = "INBOX"
    move_to: str | None = None
    max_message_bytes: int = 25 * 1024 * 1024
    timeout_seconds: float = 30.0


class FaxSettings(BaseModel):
    base_url: str | None = None
    api_key: SecretStr | None = None
    callback_secret: SecretStr | None = None
    timeout_seconds: float = 30.0


class RegistrySettings(BaseModel):
    """The company registry's HTTP endpoint; unset base_url means "not consulted"."""

    base_url: str | None = None
    api_key: SecretStr | None = None
    api_key_header: str = "Authorization"
    timeout_seconds: float = Field(default=5.0, gt=0)
    attempts: int = Field(default=3, ge=1)
    backoff_seconds: float = Field(default=0.5, ge=0)
    # After this many tax ids in a row fail for transport reasons the registry is
    # taken as down: retrying every remaining company would only stall the run.
    down_after_failures: int = Field(default=3, ge=1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ACCOUNTFLOW_", env_file=".env", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Path(".accountflow")
    database_url: SecretStr | None = Field(
        default=None, description="SQLAlchemy URL; SQLite under data_dir when unset."
    )
    config_dir: Path = CONFIG_DIR
    default_region: str = Field(default="BR", min_length=2, max_length=2)
    timezone: str = "America/Sao_Paulo"
    xlsx_max_uncompressed_bytes: int = 256 * 1024 * 1024
    xlsx_max_compression_ratio: float = 200.0
    xlsx_max_entries: int = 10_000
    max_field_chars: int = 1_000
    # Processes that stage a large batch's files in parallel (never more than the cores).
    # Each normalises a file 20,000 rows at a time, about 0.35 GB at peak for a 90,000-row
    # file, and imports staging alone (tasks/ingest/staging_worker.py), not Prefect.
    staging_workers: int = Field(default=2, ge=1)
    # A batch of at least this many rows that is larger than what source_rows holds loads
    # in bulk: the ingestion tables' indexes (and, on PostgreSQL, the foreign keys between
    # them) are built and checked once after the rows are in, inside the same transaction
    # (connectors/database/ingest_store.bulk_load). On PostgreSQL other sessions cannot read
    # those tables until the load commits. 0 turns it off.
    bulk_load_min_rows: int = Field(default=20_000, ge=0)
    smtp: SmtpSettings = SmtpSettings()
    imap: ImapSettings = ImapSettings()
    fax: FaxSettings = FaxSettings()
    webhook_url: SecretStr | None = None
    webhook_allowed_hosts: list[str] = []
    api_token: SecretStr | None = None
    # Signs unsubscribe links and VERP addresses. Unset: a random one is generated into the
    # data dir on first use (connectors/link_secrets.py); none ships with the code.
    unsubscribe_secret: SecretStr | None = None
    # How long links signed with a rotated-out secret keep working.
    unsubscribe_secret_grace_days: float = Field(default=90, ge=0)
    public_base_url: str = "http://127.0.0.1:8000"
    registry: RegistrySettings = RegistrySettings()
    scoring_policy: Path | None = Field(
        default=None, description="Scorecard YAML; config_dir/scoring.yaml when unset."
    )
    # Prefect events are one HTTP call each; a scorecard change can move many thousands
    # of bands at once, and the app_events table keeps all of them regardless.
    band_event_emit_limit: int = Field(default=5_000, ge=0)

    def resolved_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.data_dir / 'accountflow.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()


EmailMode = Literal["auto", "smtp", "dir", "off"]


class ComplaintSettings(BaseSettings):
    """``ACCOUNTFLOW_COMPLAINTS_*``: where policies come from and how people are told."""

    model_config = SettingsConfigDict(
        env_prefix="ACCOUNTFLOW_COMPLAINTS_", env_file=".env", extra="ignore"
    )

    team_file: Path | None = None
    sla_file: Path | None = None
    # auto: SMTP when ACCOUNTFLOW_SMTP__* is configured, else .eml files under the data dir.
    email: EmailMode = "auto"
    email_from: str = "accountflow@localhost"
    outbox_dir: Path | None = None
    webhook_attempts: int = 5
    webhook_backoff_seconds: float = 1.0


@lru_cache
def get_complaint_settings() -> ComplaintSettings:
    return ComplaintSettings()


class OutreachSettings(BaseSettings):
    """Outreach knobs, from ``ACCOUNTFLOW_OUTREACH_*``."""

    model_config = SettingsConfigDict(
        env_prefix="ACCOUNTFLOW_OUTREACH_", env_file=".env", extra="ignore"
    )

    campaigns_dir: Path = CONFIG_DIR / "campaigns"
    templates_dir: Path = CONFIG_DIR / "templates"
    # "directory" writes .eml files under the data dir instead of talking SMTP (demo).
    mail_transport: Literal["smtp", "directory"] = "smtp"
    # Rows per dispatch-batch task: one claim, one commit before the sends and one after,
    # and the throttle slots taken in a few Prefect API calls whatever the batch's size, so
    # larger batches spread that fixed cost thinner (benchmarks/bench_dispatch.py).
    batch_size: int = 2000
    # How long a batch waits for a Prefect rate-limit slot before leaving rows for later.
    throttle_wait_seconds: float = 30.0
    # A fax handed to the gateway this long ago with no final status is asked about.
    fax_poll_after_minutes: float = 30.0
    # Failure share of a run above which an event for the alerting automation is emitted.
    failure_rate_alert: float = 0.2
    # Prefect notification block ("type-slug/name") the alerting automations notify.
    alert_block: str | None = None


@lru_cache
def get_outreach_settings() -> OutreachSettings:
    return OutreachSettings()
