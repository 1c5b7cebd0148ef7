from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import DEFAULT_DATABASE_URL, Settings, local_secret_key
from app.letters.models import Letter
from app.mail import new_message_id


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


def test_development_without_a_key_makes_a_private_random_one(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secret-key"
    first = local_secret_key(path)
    assert len(first) >= 48
    assert path.stat().st_mode & 0o777 == 0o600
    local_secret_key.cache_clear()
    assert local_secret_key(path) == first  # kept across restarts
    other = tmp_path / "elsewhere"
    assert local_secret_key(other) != first


@pytest.mark.parametrize("mail_from", ["", "no-at-sign", "@example.org", f"a@{'d' * 201}"])
def test_mail_from_must_be_an_address_that_fits_message_ids(mail_from: str) -> None:
    with pytest.raises(ValidationError, match="APPEALS_MAIL_FROM"):
        Settings(mail_from=mail_from, _env_file=None)


def test_the_longest_mail_from_domain_fits_letter_message_id() -> None:
    settings = Settings(mail_from=f"a@{'d' * 200}", secret_key="t" * 40, _env_file=None)
    message_id = new_message_id(settings.mail_from)
    assert len(message_id) <= Letter.__table__.c.message_id.type.length  # type: ignore[attr-defined]
