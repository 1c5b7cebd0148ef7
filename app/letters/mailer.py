"""The confirmation e-mail to the citizen: stored in an outbox in the submission's transaction,
built and sent by the delivery worker (embedded in the service, or `appeals worker`) over one SMTP
connection kept open, to the configured relay or, with none, to the local sink.

The web request thus does no SMTP and builds no message. The outbox row carries the secret links:
it is deleted as soon as the message is accepted by the relay, given up after a few attempts, or
dropped once its link has expired. Failures are logged by type and count only, never with the
address or the links.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from functools import lru_cache
from typing import Any

import aiosmtplib
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import mail
from app.config import Settings
from app.db import begin_write, utcnow
from app.letters.submissions import ConfirmationEmail
from app.outage import Outage

logger = logging.getLogger("appeals.letters.mailer")

BATCH = 50
MAX_ATTEMPTS = 5
LEASE = dt.timedelta(minutes=2)


def confirmation_bytes(
    *, settings: Settings, to: str, subject: str, body: str, date: dt.datetime, message_id: str
) -> bytes:
    """The confirmation e-mail, assembled directly as bytes (the sender builds
    one per submission: EmailMessage costs about 1 ms, this a few dozen microseconds), with the
    body in base64 (7-bit clean for any relay). tests/letters/test_outbox.py checks that both
    parse to the same headers and text."""
    headers = [
        f"From: {settings.mail_from}",
        f"To: {mail.check_address(to, field='email')}",
        f"Subject: {_subject_header(subject)}",
        f"Date: {mail.date_header(date)}",
        f"Message-ID: {message_id}",
        "Auto-Submitted: auto-generated",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: base64",
    ]
    head = ("\r\n".join(headers) + "\r\n\r\n").encode("ascii")
    return head + mail.encode_body(body)


@lru_cache(maxsize=16)
def _subject_header(subject: str) -> str:
    # One subject per language, the same in every e-mail (no one's data): encoded once, as
    # email.header's encoding costs about a tenth of the sender's CPU per e-mail.
    return mail.encode_unstructured(
        "Subject", mail.clean_text(subject, limit=200)
    )


def confirmation_row(
    *, to: str, subject: str, body: str, expires_at: dt.datetime
) -> dict[str, Any]:
    """The outbox row of a confirmation e-mail (address and subject checked), written with its
    submission by saving.save."""
    now = utcnow()
    return {
        "to_address": mail.check_address(to, field="email"),
        "subject": mail.clean_text(subject, limit=200),
        "body": body,
        "created_at": now,
        "expires_at": expires_at,
        "attempts": 0,
        "next_attempt_at": now,
    }


class ConfirmationSender:
    """Sends the outbox: claims due rows under a lease, sends them over one SMTP connection,
    deletes what was sent. Several senders (processes) may run: the lease keeps them apart."""

    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self._smtp: aiosmtplib.SMTP | None = None
        self._last_used = 0.0
        self.sent = 0
        self.failed = 0
        self.outage = Outage(logger, "confirmation sender")

    # -- SMTP -----------------------------------------------------------------------------------

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

    async def _deliver(self, to: str, message: bytes) -> bool:
        for attempt in range(2):
            try:
                if self._smtp is None or not self._smtp.is_connected:
                    self._smtp = self._client()
                    await self._smtp.connect()
                await self._smtp.sendmail(self.settings.mail_from, [to], message)
                self._last_used = asyncio.get_running_loop().time()
                return True
            except (aiosmtplib.SMTPException, OSError) as exc:
                # A kept connection may have been dropped by the server: reconnect once.
                await self._disconnect()
                if attempt == 1:
                    logger.warning("confirmation e-mail not delivered: %s", type(exc).__name__)
        return False

    async def aclose(self) -> None:
        await self._disconnect()

    # -- the outbox -----------------------------------------------------------------------------

    async def _claim(self) -> list[tuple[int, str, str, str, int, dt.datetime]]:
        now = utcnow()
        free = or_(ConfirmationEmail.claimed_until.is_(None), ConfirmationEmail.claimed_until < now)
        due = (
            select(ConfirmationEmail.id)
            .where(ConfirmationEmail.next_attempt_at <= now, free)
            .order_by(ConfirmationEmail.id)
            .limit(BATCH)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has BEGIN IMMEDIATE
        )
        async with self.sessionmaker() as session:
            await begin_write(session)
            rows = await session.execute(
                update(ConfirmationEmail)
                .where(ConfirmationEmail.id.in_(due.scalar_subquery()), free)
                .values(claimed_until=now + LEASE)
                .returning(
                    ConfirmationEmail.id,
                    ConfirmationEmail.to_address,
                    ConfirmationEmail.subject,
                    ConfirmationEmail.body,
                    ConfirmationEmail.attempts,
                    ConfirmationEmail.expires_at,
                )
                .execution_options(synchronize_session=False)
            )
            claimed = [tuple(row) for row in rows]
            await session.commit()
        return sorted(claimed)  # type: ignore[arg-type]

    async def send_due(self) -> int:
        """Send every e-mail due now; returns how many were sent."""
        sent_total = 0
        while True:
            claimed = await self._claim()
            if not claimed:
                return sent_total
            sent: list[int] = []
            dropped: list[int] = []
            retry: list[tuple[int, int]] = []
            now = utcnow()
            for id_, to, subject, body, attempts, expires_at in claimed:
                if expires_at <= now:
                    dropped.append(id_)  # the link has expired: nothing useful to send
                    continue
                try:
                    message = confirmation_bytes(
                        settings=self.settings,
                        to=to,
                        subject=subject,
                        body=body,
                        date=now,
                        message_id=mail.new_message_id(self.settings.mail_from),
                    )
                    ok = await self._deliver(to, message)
                except Exception as exc:  # never let one message stop the others
                    logger.error("confirmation e-mail: unexpected %s", type(exc).__name__)
                    ok = False
                if ok:
                    sent.append(id_)
                elif attempts + 1 >= MAX_ATTEMPTS:
                    dropped.append(id_)
                else:
                    retry.append((id_, attempts + 1))
            await self._record(sent, dropped, retry)
            self.sent += len(sent)
            self.failed += len(dropped) + len(retry)
            if dropped:
                logger.warning("%d confirmation e-mails given up or expired", len(dropped))
            sent_total += len(sent)
            if not sent:  # all failed: the relay is down; try again later
                return sent_total

    async def _record(
        self, sent: list[int], dropped: list[int], retry: list[tuple[int, int]]
    ) -> None:
        now = utcnow()
        async with self.sessionmaker() as session:
            await begin_write(session)
            if sent or dropped:
                await session.execute(
                    delete(ConfirmationEmail).where(ConfirmationEmail.id.in_(sent + dropped))
                )
            for id_, attempts in retry:
                await session.execute(
                    update(ConfirmationEmail)
                    .where(ConfirmationEmail.id == id_)
                    .values(
                        attempts=attempts,
                        claimed_until=None,
                        next_attempt_at=now + dt.timedelta(seconds=30 * 2 ** (attempts - 1)),
                    )
                )
            await session.commit()

    async def run(self, stopping: asyncio.Event, wake: asyncio.Event | None = None) -> None:
        """Send until stopped: at once when woken (a submission in this process), else every
        `worker_poll_seconds` (submissions in other processes). While the database is away the
        outage is logged once, the outbox retried with a capped back-off (a wake does not cut
        it short), and the recovery logged once."""
        wake = wake or asyncio.Event()
        loop = asyncio.get_running_loop()
        while not stopping.is_set():
            wake.clear()
            started = self.outage.clock()
            try:
                await self.send_due()
            except Exception as exc:  # the database is busy or down: try again later
                self.outage.failed(exc, started)
            else:
                self.outage.succeeded(started)
            if self._smtp is not None and loop.time() - self._last_used > (
                self.settings.smtp_idle_seconds
            ):
                await self._disconnect()  # idle servers drop sessions: close ours first
            if self.outage.active:
                await self.outage.wait(stopping)
                continue
            waits = [asyncio.ensure_future(stopping.wait()), asyncio.ensure_future(wake.wait())]
            try:
                await asyncio.wait(
                    waits,
                    timeout=self.settings.worker_poll_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                for waiter in waits:
                    waiter.cancel()


async def drain(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Send everything due now with a sender of its own (`appeals worker --once`, tests)."""
    sender = ConfirmationSender(settings, sessionmaker)
    try:
        return await sender.send_due()
    finally:
        await sender.aclose()
