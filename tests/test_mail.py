"""The letter's message bytes: headers repeated within a confirmation are encoded once (memo),
and the bytes are exactly those built without it, parsing back to the same headers and body."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from app import mail

NAMES = [
    "Мария Петрова",
    "Maria Petrova",
    'O\'Brien, "Jr." <x@y.z>',
    "Константинопольская-Переименованная Анастасия-Александра Вячеславовна " * 3,
    "Имя\r\nBcc: victim@example.org",
    "a,b;c:d@e",
    "  лишние   пробелы\tи\u2028разделители ",
]
SUBJECTS = [
    "Обращение о сохранении больницы",
    "Plain ASCII subject, with, commas",
    "Очень длинная тема " * 30,
    "Subject\r\nBcc: victim@example.org",
    '=?utf-8?q?not_really?= «кавычки» и "quotes"',
]


def _build(name: str, subject: str, memo: dict[tuple[str, ...], str] | None) -> bytes:
    return mail.build_message(
        mail_from="appeals@appeals.example",
        sender_name=name,
        sender_email="maria@example.com",
        recipient_name=name[::-1],
        recipient_email="deputy@duma.example.org",
        subject=subject,
        body="Прошу сохранить больницу.\n" * 20,
        campaign_id=7,
        campaign_title=subject,
        message_id="<x@appeals.example>",
        date=dt.datetime(2026, 11, 27, 5, 0, tzinfo=dt.UTC),
        memo=memo,
    )


@pytest.mark.parametrize("subject", SUBJECTS)
def test_memo_gives_the_same_bytes(subject: str) -> None:
    memo: dict[tuple[str, ...], str] = {}
    for name in NAMES:
        plain = _build(name, subject, None)
        # twice with the memo: the second time every repeated header comes from it
        assert _build(name, subject, memo) == plain
        assert _build(name, subject, memo) == plain
        parsed = message_from_bytes(plain, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        assert "Bcc" not in parsed
        assert str(parsed["Subject"]) == mail.clean_text(subject, limit=998)
        # Python's address parser puts a space between adjacent encoded words of a long display
        # name (RFC 2047 says to drop it); the characters are all there.
        shown = parsed["Reply-To"].addresses[0].display_name
        assert shown.replace(" ", "") == mail.clean_text(name).replace(" ", "")
        assert parsed["Reply-To"].addresses[0].addr_spec == "maria@example.com"
        assert parsed.get_content().replace("\r\n", "\n") == "Прошу сохранить больницу.\n" * 20
    assert memo  # it was used
