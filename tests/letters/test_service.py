"""Letters: the message built at creation, header safety, DKIM, hold, release and cancel."""

from __future__ import annotations

import base64
import subprocess
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import InvalidInput
from app.letters import service
from app.letters.models import Letter, LetterMessage, LetterStatus
from tests.delivery.conftest import SmtpServer
from tests.factories import create_deputy, create_letter, message_of


@pytest.fixture
def letter_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"mail_from": "appeals@appeals.example"})


def _parse(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


async def test_create_letter_builds_a_well_formed_message(
    session: AsyncSession, letter_settings: Settings
) -> None:
    deputy = await create_deputy(
        session, surname="Ёлкина", first_name="Анна", patronymic="Ивановна", email="Elkina@Duma.RU"
    )
    letter = await create_letter(
        session,
        settings=letter_settings,
        deputy=deputy,
        campaign_id=42,
        campaign_title="Сохраним больницу в Красном Бору",
        sender_name="Мария Петрова",
        sender_email="maria@example.com",
        subject="Обращение о сохранении больницы в посёлке Красный Бор Тверской области",
        body="Уважаемая Анна Ивановна!\n\nПрошу сохранить больницу.\n.\nС уважением, Мария",
    )
    await session.commit()
    assert letter.status == LetterStatus.queued
    assert letter.recipient_email == "Elkina@Duma.RU"
    assert letter.recipient_domain == "duma.ru"
    raw = message_of(letter)
    assert raw.isascii()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    parsed = _parse(raw)
    assert parsed.defects == []
    assert parsed["From"].addresses[0].display_name == "Мария Петрова"
    assert parsed["From"].addresses[0].addr_spec == "appeals@appeals.example"
    assert parsed["Reply-To"].addresses[0].addr_spec == "maria@example.com"
    assert parsed["To"].addresses[0].display_name == "Ёлкина Анна Ивановна"
    assert parsed["Subject"] == (
        "Обращение о сохранении больницы в посёлке Красный Бор Тверской области"
    )
    assert parsed["Message-ID"] == letter.message_id
    assert letter.message_id.endswith("@appeals.example>")
    assert parsed["X-Appeals-Campaign"] == "42 Сохраним больницу в Красном Бору"
    assert parsed["Date"].datetime is not None
    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_content_charset() == "utf-8"
    assert parsed.get_content() == (
        "Уважаемая Анна Ивановна!\r\n\r\nПрошу сохранить больницу.\r\n.\r\nС уважением, Мария"
    )
    stored = await session.scalar(
        select(LetterMessage.message).where(LetterMessage.letter_id == letter.id)
    )
    assert stored == raw


async def test_reply_to_can_be_turned_off(session: AsyncSession, letter_settings: Settings) -> None:
    letter = await create_letter(session, settings=letter_settings, reply_to=False)
    assert _parse(message_of(letter))["Reply-To"] is None
    # The address is still kept (until the purge) so the citizen can be told the outcome.
    assert letter.sender_email == "maria@example.com"


@pytest.mark.parametrize(
    "name",
    [
        "Eve\r\nBcc: victim@example.org",
        "Eve\nX-Injected: yes",
        "Ева\rBcc: victim@example.org",
        "Eve\x00\x0bBcc:\u2028victim@example.org",
        '"Eve" <eve@evil.example>, Bcc: victim@example.org',
    ],
)
async def test_a_hostile_name_never_adds_a_header(
    session: AsyncSession,
    letter_settings: Settings,
    smtp_server: SmtpServer,
    name: str,
) -> None:
    letter = await create_letter(session, settings=letter_settings, sender_name=name)
    # Deliver it to a real SMTP server, and read what the server got.
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_server.port, start_tls=False)
    await smtp.connect()
    await smtp.sendmail("appeals@appeals.example", [letter.recipient_email], message_of(letter))
    await smtp.quit()
    (received,) = smtp_server.received
    assert received.rcpt == [letter.recipient_email]
    parsed = received.parsed()
    assert parsed.defects == []
    assert parsed["Bcc"] is None
    assert parsed["X-Injected"] is None
    names = [n.lower() for n in parsed]
    assert names == [
        "from",
        "to",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "x-appeals-campaign",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    ]
    assert len(parsed["From"].addresses) == 1
    assert parsed["From"].addresses[0].addr_spec == "appeals@appeals.example"
    assert "\n" not in str(parsed["From"])
    assert "\r" not in str(parsed["From"])


@pytest.mark.parametrize(
    "address", ["maria@example.com\r\nBcc: x@y.z", "not an address", "a@b@c", "a..b@example.com"]
)
async def test_a_bad_sender_address_is_refused(
    session: AsyncSession, letter_settings: Settings, address: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        await create_letter(session, settings=letter_settings, sender_email=address)
    assert raised.value.field == "sender_email"


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A throw-away RSA key made with openssl: its path and the public key's DER bytes."""
    directory = tmp_path_factory.mktemp("dkim")
    private = directory / "dkim.pem"
    subprocess.run(
        ["openssl", "genrsa", "-out", str(private), "2048"], check=True, capture_output=True
    )
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(private), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return private, public


async def test_dkim_signature_verifies(
    session: AsyncSession, letter_settings: Settings, dkim_key: tuple[Path, bytes]
) -> None:
    import dkim  # type: ignore[import-untyped]

    private, public = dkim_key
    settings = letter_settings.model_copy(
        update={
            "dkim_selector": "appeals",
            "dkim_domain": "appeals.example",
            "dkim_private_key_path": str(private),
        }
    )
    letter = await create_letter(session, settings=settings, sender_name="Мария Петрова")
    assert message_of(letter).startswith(b"DKIM-Signature: ")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"appeals._domainkey.appeals.example."
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    assert dkim.verify(message_of(letter), dnsfunc=dns)
    tampered = message_of(letter).replace(b"Content-Type: text/plain", b"Content-Type: text/html")
    assert not dkim.verify(tampered, dnsfunc=dns)


async def test_hold_release_and_cancel_by_version(
    session: AsyncSession, letter_settings: Settings
) -> None:
    deputy = await create_deputy(session)
    v1 = [
        await create_letter(session, settings=letter_settings, deputy=deputy, appeal_version_id=1)
        for _ in range(3)
    ]
    v2 = await create_letter(session, settings=letter_settings, deputy=deputy, appeal_version_id=2)
    v1[0].status = LetterStatus.sent  # already delivered: untouched by withdrawal
    v1[1].status = LetterStatus.sending  # on the wire now: not stopped
    await session.commit()

    assert await service.hold_version_letters(session, appeal_version_id=1) == 1
    assert await service.release_version_letters(session, appeal_version_id=1) == 1
    assert await service.hold_version_letters(session, appeal_version_id=1) == 1
    assert await service.cancel_version_letters(session, appeal_version_id=1) == 1
    await session.commit()
    session.expunge_all()
    statuses = {
        row.id: row.status for row in await session.scalars(select(Letter).order_by(Letter.id))
    }
    assert statuses == {
        v1[0].id: LetterStatus.sent,
        v1[1].id: LetterStatus.sending,
        v1[2].id: LetterStatus.cancelled,
        v2.id: LetterStatus.queued,
    }
    cancelled = await session.get(Letter, v1[2].id)
    assert cancelled is not None
    assert cancelled.finished_at is not None


async def test_citizen_cancels_only_unsent_letters(
    session: AsyncSession, letter_settings: Settings
) -> None:
    a = await create_letter(session, settings=letter_settings)
    b = await create_letter(session, settings=letter_settings)
    b.status = LetterStatus.sent
    await session.commit()
    assert await service.cancel_letters(session, letter_ids=[a.id, b.id]) == 1
    assert await service.cancel_letters(session, letter_ids=[]) == 0
    await session.commit()
    counts = await service.status_counts(session)
    assert counts == {"cancelled": 1, "sent": 1}
