"""The relay over STARTTLS and implicit TLS, with login, as configured in settings."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.letters.models import FailureClass, LetterStatus
from tests.delivery.conftest import SmtpServer, drain, letters, relay_settings
from tests.factories import create_letter


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with openssl: (cert, key)."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _authenticate(
    server: SMTP, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"appeals",
        b"s3cret",
    )
    return AuthResult(success=ok)


@pytest.fixture(params=["starttls", "tls"])
async def tls_server(
    request: pytest.FixtureRequest, certificate: tuple[Path, Path]
) -> AsyncIterator[tuple[SmtpServer, str]]:
    mode: str = request.param
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    recorder = SmtpServer()
    loop = asyncio.get_running_loop()

    def factory() -> Any:
        # aiosmtpd cannot tell that an implicit-TLS connection is encrypted, so it must be told
        # not to require TLS for AUTH there, and warns about it: the connection is TLS here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return _server()

    def _server() -> SMTP:
        return SMTP(
            recorder,
            hostname="tls-relay",
            loop=loop,
            tls_context=context if mode == "starttls" else None,
            require_starttls=mode == "starttls",
            auth_required=True,
            auth_require_tls=mode == "starttls",
            authenticator=_authenticate,
        )

    server = await loop.create_server(
        factory, host="127.0.0.1", port=0, ssl=context if mode == "tls" else None
    )
    recorder.port = server.sockets[0].getsockname()[1]
    yield recorder, mode
    server.close()
    await server.wait_closed()


async def test_tls_and_login_from_settings(
    tls_server: tuple[SmtpServer, str],
    certificate: tuple[Path, Path],
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: AsyncSession,
) -> None:
    recorder, mode = tls_server
    good = relay_settings(
        settings,
        recorder.port,
        smtp_tls=mode,
        smtp_ca_file=str(certificate[0]),
        smtp_username="appeals",
        smtp_password="s3cret",
    )
    await create_letter(session, settings=good)
    await session.commit()

    # A wrong password is the relay's problem, not the letter's: deferred, never failed.
    wrong = relay_settings(good, recorder.port, smtp_password="wrong", retry_base_seconds=0.01)
    await drain(wrong, engine, sessionmaker, until=lambda: _deferred(sessionmaker))
    (row,) = await letters(sessionmaker)
    # Refused (535) or left unanswered, depending on the server: a relay error either way.
    assert row.failure_class in (FailureClass.connection, FailureClass.timeout)
    assert row.status == LetterStatus.deferred
    assert recorder.received == []

    await drain(good, engine, sessionmaker)
    (row,) = await letters(sessionmaker)
    assert row.status == LetterStatus.sent
    assert recorder.message_ids() == [row.message_id]


async def _deferred(sessionmaker: async_sessionmaker[AsyncSession]) -> bool:
    return all(r.status == LetterStatus.deferred for r in await letters(sessionmaker))
