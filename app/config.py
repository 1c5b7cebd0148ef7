"""Settings, read from the environment (prefix APPEALS_) and an optional .env file."""

from __future__ import annotations

import logging
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that mean "nobody chose a secret yet".
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "dev", "development"})
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/appeals.sqlite3"
LOCAL_KEY_FILE = Path("var/secret-key")
# Connections each process keeps open, and how many more it may open for a burst (closed again
# when returned). A web process holds one per request in flight: with fewer kept than that, it
# opens and closes connections all the time (a PostgreSQL backend costs 1-3 ms of the server's
# CPU to start; bench/README.md, sixth round).
DATABASE_POOL_SIZE = 10
DATABASE_MAX_OVERFLOW = 10
MAIL_FROM_DOMAIN_MAX = 200


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="APPEALS_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    database_pool_size: int = Field(default=DATABASE_POOL_SIZE, ge=1)
    database_max_overflow: int = Field(default=DATABASE_MAX_OVERFLOW, ge=0)
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    # Shared state for many processes (rate limits, send pacing); else memory or the database.
    redis_url: str | None = None

    # Staff accounts (app.staff). Argon2 costs: the test environment lowers them (see below).
    password_time_cost: int = 3
    password_memory_kib: int = 65536
    password_parallelism: int = 4
    staff_session_hours: int = 12
    # None: always Secure in production (TLS usually ends at a proxy, so the app sees http),
    # elsewhere exactly when the request came over HTTPS.
    cookie_secure: bool | None = None
    # Failed logins allowed per window, per account and per client address (`limits` syntax).
    login_limit_per_account: str = "5 per 15 minutes"
    login_limit_per_address: str = "20 per 15 minutes"

    # Delivery: the outbound relay. With no smtp_host, letters go to the local sink only.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_tls: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: str | None = None
    # CA bundle that signs the relay's certificate (a private CA); default: the system's.
    smtp_ca_file: str | None = None
    smtp_connect_timeout: float = 10.0
    smtp_timeout: float = 60.0
    smtp_pool_size: int = 4
    # Reconnect a pooled connection idle for longer than this (servers drop idle sessions).
    smtp_idle_seconds: float = 30.0
    mail_from: str = "appeals@localhost"
    # The local sink (aiosmtpd) that the embedded service starts when no relay is configured.
    sink_host: str = "127.0.0.1"
    sink_port: int = 8025
    # Pacing, shared by every worker through the database (or Redis when redis_url is set).
    send_rate: float = 100.0
    domain_rate: float = 10.0
    domain_concurrency: int = 2
    breaker_threshold: int = 5
    breaker_pause_seconds: float = 300.0
    # The worker.
    embedded_worker: bool | None = None
    worker_batch_size: int = 500
    worker_poll_seconds: float = 1.0
    lease_seconds: float = 300.0
    retry_base_seconds: float = 60.0
    retry_max_seconds: float = 3600.0
    give_up_seconds: float = 3 * 24 * 3600.0
    retention_days: float = 30.0
    purge_interval_seconds: float = 3600.0
    # DKIM signing, when all three are set.
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_private_key_path: str | None = None

    # The citizen flow (app.letters): double opt-in, limits against abuse.
    # The site's public address for links in e-mails, e.g. "https://appeals.example.org"; empty:
    # http://<host>:<port> where `appeals serve` listens (required in production). Never the
    # request's Host header, which whoever sends the request chooses.
    public_url: str = ""
    confirm_hours: float = 24.0
    # How long a web process may answer submissions from its snapshot of an open campaign and its
    # deputies (staff actions in the same process take effect at once; 0: no snapshot).
    campaign_cache_seconds: float = 2.0
    # Rate limits (`limits` syntax, ";" between rates): per client address, its /24 and /16
    # networks (/64 and /48 for IPv6), and per lower-cased e-mail address.
    limit_submit_per_address: str = "5/minute;30/hour"
    limit_submit_per_net24: str = "20/minute;200/hour"
    limit_submit_per_net16: str = "100/minute;2000/hour"
    limit_submit_per_email: str = "3/hour;10/day"
    # Confirmation, status, cancel and erase pages, per client address.
    limit_links_per_address: str = "30/minute;300/hour"
    # Direct peers whose X-Forwarded-For is believed (comma-separated addresses or networks).
    trusted_proxies: str = ""
    # Optional self-hosted proof of work (ALTCHA) on the sender's form; needs JavaScript.
    altcha: bool = False
    # The work: PBKDF2 iterations per try, and the highest secret counter (about a second on a
    # phone with the defaults).
    altcha_cost: int = 1000
    altcha_max_number: int = 3000

    @field_validator("mail_from")
    @classmethod
    def _mail_from_fits_message_ids(cls, value: str) -> str:
        # Every Message-ID ends with this domain, and letter.message_id holds 255 characters:
        # `<` + 13 (time) + `.` + 32 (random) + `@` + domain + `>`.
        local, at, domain = value.strip().rpartition("@")
        if not at or not local or not domain or len(domain) > MAIL_FROM_DOMAIN_MAX:
            raise ValueError(
                f"APPEALS_MAIL_FROM must be an e-mail address whose domain has at most "
                f"{MAIL_FROM_DOMAIN_MAX} characters"
            )
        return value.strip()

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Self:
        if self.environment == "production" and (
            self.secret_key.strip().lower() in PLACEHOLDER_SECRETS or len(self.secret_key) < 32
        ):
            raise ValueError(
                "APPEALS_SECRET_KEY must be set to a random value of at least 32 characters "
                "outside development (for example: python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))')"
            )
        return self

    @model_validator(mode="after")
    def _cheap_hashing_in_tests(self) -> Self:
        # Argon2 at production cost would dominate the test suite's run time.
        if self.environment == "test":
            if "password_time_cost" not in self.model_fields_set:
                self.password_time_cost = 1
            if "password_memory_kib" not in self.model_fields_set:
                self.password_memory_kib = 8
            if "password_parallelism" not in self.model_fields_set:
                self.password_parallelism = 1
        return self

    @model_validator(mode="after")
    def _embedded_worker_in_development(self) -> Self:
        if self.embedded_worker is None:
            self.embedded_worker = self.environment == "development"
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def effective_secret_key(self) -> str:
        """The configured key; without one (development only), a random key kept in var/."""
        return self.secret_key or local_secret_key(LOCAL_KEY_FILE)

    @property
    def public_base_url(self) -> str | None:
        """The base of links in e-mails: the public URL, else (not in production) where
        `appeals serve` listens; None in production without a public URL."""
        if self.public_url:
            return self.public_url.rstrip("/")
        if self.environment == "production":
            return None
        host = "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def secure_cookies(self, scheme: str) -> bool:
        """Whether cookies get `Secure`: as `cookie_secure` says, else always in production
        (TLS usually ends at a proxy, so the app sees http), elsewhere over HTTPS only."""
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.environment == "production" or scheme == "https"

    @property
    def relay_configured(self) -> bool:
        return bool(self.smtp_host)

    @property
    def dkim_configured(self) -> bool:
        return bool(self.dkim_selector and self.dkim_domain and self.dkim_private_key_path)


@lru_cache
def local_secret_key(path: Path) -> str:
    """A random key made once and kept in a file only its owner can read.

    Never a fixed default: keyed hashes of client addresses and CSRF tokens would be forgeable by
    anyone who read this source.
    """
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(key)
    logging.getLogger("appeals").warning(
        "APPEALS_SECRET_KEY is not set: using a random key kept in %s", path
    )
    return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
