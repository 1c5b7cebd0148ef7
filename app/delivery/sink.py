"""The local sink: an aiosmtpd server on loopback that stores what it receives in `sink_message`,
so that the embedded default never sends to a real address and staff can read what would go.

Letters to deputies (they carry the campaign header) are stored whole. Every other message is
the citizen's own mail (today the confirmation e-mail), whose links open the citizen's
confirmation, status, cancel and erase pages: staff who read the sink (admins, editors, lawyers)
must not be able to act for a citizen, so those messages are stored with the path of every link
removed. In development the links are written to the service's log instead (the terminal of
`appeals serve`: the person who runs it holds the database anyway), with no name or address,
so that a developer can confirm a test submission. A citizen's erase deletes their messages
from the sink (delivery.service.erase_sink_messages).
"""

from __future__ import annotations

import asyncio
import logging
import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.delivery.models import SinkMessage
from app.mail import CAMPAIGN_HEADER

logger = logging.getLogger("appeals.delivery.sink")

# A link: scheme, host, then a path, query or fragment (what a secret token travels in).
_LINK = re.compile(r"(https?://[^\s/?#<>\"]+)([/?#][^\s<>\"]*)")
_FIRST_SEGMENT = re.compile(r"/[A-Za-z-]{1,20}/")
REMOVED = "[removed]"


def redact_links(text: str) -> tuple[str, list[str]]:
    """The text with every link's path and query replaced by REMOVED (its host and first word
    kept: `http://host/confirm/[removed]`), and the links as they were."""
    found: list[str] = []

    def replace(match: re.Match[str]) -> str:
        base, rest = match.group(1), match.group(2)
        if rest in ("/", ""):
            return match.group(0)
        found.append(match.group(0))
        first = _FIRST_SEGMENT.match(rest)
        return base + (first.group(0) if first else "/") + REMOVED

    return _LINK.sub(replace, text), found


def _redacted(data: bytes) -> tuple[bytes, list[str]]:
    """A message that is not a letter to a deputy, with its text parts' links redacted."""
    parsed = message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    links: list[str] = []
    for part in parsed.walk():
        if part.get_content_maintype() != "text" or part.is_multipart():
            continue
        assert isinstance(part, EmailMessage)
        text, found = redact_links(str(part.get_content()))
        links.extend(found)
        part.set_content(text, subtype=part.get_content_subtype(), charset="utf-8", cte="base64")
    return parsed.as_bytes(), links


def _headers(data: bytes) -> tuple[str, str, bool]:
    parsed = message_from_bytes(data, policy=policy.default)
    return (
        str(parsed.get("Message-ID", ""))[:255],
        str(parsed.get("Subject", "")),
        CAMPAIGN_HEADER in parsed,
    )


class SinkHandler:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, reveal_links: bool = False
    ) -> None:
        self.sessionmaker = sessionmaker
        # Development only: the removed links are logged for the developer.
        self.reveal_links = reveal_links

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = bytes(envelope.original_content or envelope.content or b"")  # type: ignore[arg-type]
        message_id, subject, to_deputy = _headers(data)
        links: list[str] = []
        if not to_deputy:
            data, links = _redacted(data)
        try:
            async with self.sessionmaker() as db:
                stored = SinkMessage(
                    mail_from=str(envelope.mail_from or "")[:254],
                    rcpt_to=", ".join(envelope.rcpt_tos),
                    message_id=message_id,
                    subject=subject,
                    data=data,
                )
                db.add(stored)
                await db.commit()
        except Exception as exc:  # the database is busy or down: the sender must retry
            logger.warning("sink could not store a message: %s", type(exc).__name__)
            return "451 4.3.0 sink storage unavailable, try again later"
        if links and self.reveal_links:
            logger.warning(
                "development: the links of sink message %d, removed from the stored copy: %s",
                stored.id,
                "  ".join(links),
            )
        return "250 2.0.0 stored in the local sink"


async def start_sink(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    host: str,
    port: int,
    reveal_links: bool = False,
) -> asyncio.Server:
    """Listen on host:port (port 0: any free port) in the running loop; with `reveal_links`
    (development), log the links removed from citizens' mail."""
    loop = asyncio.get_running_loop()
    handler = SinkHandler(sessionmaker, reveal_links=reveal_links)

    def factory() -> Any:
        return SMTP(handler, hostname="appeals-sink", ident="appeals sink", loop=loop)

    return await loop.create_server(factory, host=host, port=port)
