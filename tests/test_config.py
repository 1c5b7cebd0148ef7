from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.config import DEFAULT_DATABASE_URL, Settings


def test_defaults_to_sqlite_under_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APPEALS_DATABASE_URL", raising=False)
    settings = Settings(_env_file=None)
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.is_sqlite


def test_reads_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPEALS_DATABASE_URL", "postgresql+asyncpg://u@127.0.0.1/x")
    settings = Settings(_env_file=None)
    assert not settings.is_sqlite


@pytest.mark.parametrize("secret", ["", "changeme", "secret", "short-but-random-xyz"])
def test_production_refuses_placeholder_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="APPEALS_SECRET_KEY"):
        Settings(environment="production", secret_key=secret, _env_file=None)


def test_production_accepts_real_secret() -> None:
    key = "k3J9-" * 10
    assert Settings(environment="production", secret_key=key, _env_file=None).secret_key == key


def test_development_needs_no_secret() -> None:
    assert Settings(environment="development", _env_file=None).effective_secret_key
