"""The confirmation e-mail to the citizen: built here, sent in the background over one SMTP
connection kept open, to the configured relay or, with none, to the local sink.

The message is never stored: if the process stops before sending it, the citizen fills in the
form again (the page says so). Failures are logged by type only, never with the address.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid

import aiosmtplib

from app.config import Settings
from app.db import utcnow
from app.delivery import message as delivery_message

logger = logging.getLogger("appeals.letters.mailer")


def build_confirmation(*, settings: Settings, to: str, subject: str, body: str) -> EmailMessage:
    """A plain-text message; `to` must already be a checked addr-spec (no name: no header risk)."""
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = settings.mail_from
    message["To"] = delivery_message.check_address(to, field="email")
    message["Subject"] = delivery_message.clean_text(subject, limit=200)
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain=delivery_message.address_domain(settings.mail_from))
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body, charset="utf-8")
    return message


class Mailer:
    """A queue and one sender task, started on first use in the running loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._queue: asyncio.Queue[EmailMessage] | None = None
        self._task: asyncio.Task[None] | None = None
        self._smtp: aiosmtplib.SMTP | None = None
        self.sent = 0
        self.failed = 0

    def send(self, message: EmailMessage) -> None:
        """Queue a message; it leaves in the background."""
        if self._queue is None:
            self._queue = asyncio.Queue()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="appeals-confirmation-mailer")
        self._queue.put_nowait(message)

    async def join(self) -> None:
        """Wait until everything queued was sent or given up (tests, shutdown)."""
        if self._queue is not None:
            await self._queue.join()

    async def aclose(self) -> None:
        if self._queue is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout=10)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._disconnect()

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        if s.relay_configured:
            return aiosmtplib.SMTP(
                hostname=s.smtp_host,
                port=s.smtp_port,
                use_tls=s.smtp_tls == "tls",
                start_tls=s.smtp_tls == "starttls",
                username=s.smtp_username,
                password=s.smtp_password,
                timeout=s.smtp_timeout,
            )
        return aiosmtplib.SMTP(
            hostname=s.sink_host, port=s.sink_port, start_tls=False, timeout=s.smtp_timeout
        )

    async def _disconnect(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(Exception):
                await self._smtp.quit()
            self._smtp = None

    async def _deliver(self, message: EmailMessage) -> None:
        for attempt in range(2):
            try:
                if self._smtp is None or not self._smtp.is_connected:
                    self._smtp = self._client()
                    await self._smtp.connect()
                await self._smtp.send_message(message)
                self.sent += 1
                return
            except (aiosmtplib.SMTPException, OSError) as exc:
                # A pooled connection may have been dropped by the server: reconnect once.
                await self._disconnect()
                if attempt == 1:
                    self.failed += 1
                    logger.warning("confirmation e-mail not delivered: %s", type(exc).__name__)

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            if self._smtp is None:
                message = await self._queue.get()
            else:
                # Idle servers drop sessions: close ours after a quiet spell.
                try:
                    message = await asyncio.wait_for(
                        self._queue.get(), self.settings.smtp_idle_seconds
                    )
                except TimeoutError:
                    await self._disconnect()
                    continue
            try:
                await self._deliver(message)
            except Exception as exc:  # never let one message stop the sender
                self.failed += 1
                logger.error("confirmation mailer: unexpected %s", type(exc).__name__)
            finally:
                self._queue.task_done()
