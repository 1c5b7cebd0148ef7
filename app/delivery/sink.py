"""The local sink: an aiosmtpd server on loopback that stores what it receives in `sink_message`,
so that the embedded default never sends to a real address and staff can read what would go."""

from __future__ import annotations

import asyncio
import logging
from email import message_from_bytes, policy
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.delivery.models import SinkMessage

logger = logging.getLogger("appeals.delivery.sink")


def _headers(data: bytes) -> tuple[str, str]:
    parsed = message_from_bytes(data, policy=policy.default)
    return str(parsed.get("Message-ID", ""))[:255], str(parsed.get("Subject", ""))


class SinkHandler:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = bytes(envelope.original_content or envelope.content or b"")  # type: ignore[arg-type]
        message_id, subject = _headers(data)
        try:
            async with self.sessionmaker() as db:
                db.add(
                    SinkMessage(
                        mail_from=str(envelope.mail_from or "")[:254],
                        rcpt_to=", ".join(envelope.rcpt_tos),
                        message_id=message_id,
                        subject=subject,
                        data=data,
                    )
                )
                await db.commit()
        except Exception as exc:  # the database is busy or down: the sender must retry
            logger.warning("sink could not store a message: %s", type(exc).__name__)
            return "451 4.3.0 sink storage unavailable, try again later"
        return "250 2.0.0 stored in the local sink"


async def start_sink(
    sessionmaker: async_sessionmaker[AsyncSession], *, host: str, port: int
) -> asyncio.Server:
    """Listen on host:port (port 0: any free port) in the running loop."""
    loop = asyncio.get_running_loop()
    handler = SinkHandler(sessionmaker)

    def factory() -> Any:
        return SMTP(handler, hostname="appeals-sink", ident="appeals sink", loop=loop)

    return await loop.create_server(factory, host=host, port=port)
