"""Settings, read from the environment (prefix APPEALS_) and an optional .env file."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal, Self

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that mean "nobody chose a secret yet".
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "dev", "development"})
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/appeals.sqlite3"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="APPEALS_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"

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
    # Where throttling counters live: one process's memory, or e.g. "async+redis://host:6379".
    rate_limit_storage_url: str = "async+memory://"

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

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def effective_secret_key(self) -> str:
        """The configured key, or a fixed development key where none is required."""
        return self.secret_key or "development-only-key-never-used-in-production"


@lru_cache
def get_settings() -> Settings:
    return Settings()
