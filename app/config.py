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
    # Shared state for many web processes (rate limits); in-process memory when unset.
    redis_url: str | None = None

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
