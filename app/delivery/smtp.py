"""SMTP to one relay: persistent aiosmtplib connections (each worker keeps `smtp_pool_size` of
them, one per sending lane), and the reading of replies.

The outcome of a transaction is decided by the reply code, never by the exception's type:
2xx sent; 4xx deferred; 5xx failed at once. No reply at all (timeout, refused, reset) defers. A
connection lost after the message's final dot leaves the outcome unknown: the worker sends the
letter again, once, much later, with the same Message-ID (the duplicate window in the README).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import aiosmtplib
from aiosmtplib.email import quote_address

from app.config import Settings
from app.letters.models import FailureClass


class Outcome(StrEnum):
    sent = "sent"
    deferred = "deferred"
    failed = "failed"


@dataclass(frozen=True, slots=True)
class Relay:
    host: str
    port: int
    tls: str  # starttls | tls | none
    username: str | None
    password: str | None
    ca_file: str | None
    connect_timeout: float
    timeout: float
    pool_size: int
    idle_seconds: float
    is_sink: bool

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_settings(cls, settings: Settings) -> Relay:
        """The configured relay, or the local sink when none is configured."""
        if settings.smtp_host:
            return cls(
                host=settings.smtp_host,
                port=settings.smtp_port,
                tls=settings.smtp_tls,
                username=settings.smtp_username,
                password=settings.smtp_password,
                ca_file=settings.smtp_ca_file,
                connect_timeout=settings.smtp_connect_timeout,
                timeout=settings.smtp_timeout,
                pool_size=settings.smtp_pool_size,
                idle_seconds=settings.smtp_idle_seconds,
                is_sink=False,
            )
        return cls(
            host=settings.sink_host,
            port=settings.sink_port,
            tls="none",
            username=None,
            password=None,
            ca_file=None,
            connect_timeout=settings.smtp_connect_timeout,
            timeout=settings.smtp_timeout,
            pool_size=settings.smtp_pool_size,
            idle_seconds=settings.smtp_idle_seconds,
            is_sink=True,
        )


@dataclass(frozen=True, slots=True)
class Attempt:
    outcome: Outcome
    reply: str
    failure: FailureClass | None = None
    # True when the relay itself failed (no transaction was started): counts for its breaker.
    relay_error: bool = False


def classify(code: int, message: str) -> Attempt:
    """The outcome a reply code decides."""
    reply = f"{code} {message}".strip()[:1000]
    if 200 <= code < 300:
        return Attempt(Outcome.sent, reply)
    if 400 <= code < 500:
        return Attempt(Outcome.deferred, reply, FailureClass.temporary)
    if 500 <= code < 600:
        return Attempt(Outcome.failed, reply, FailureClass.permanent)
    # Anything else is a protocol error: try again later rather than lose the letter.
    return Attempt(Outcome.deferred, reply, FailureClass.temporary)


# How the reply of an attempt whose outcome is unknown begins (the worker spaces its retries).
NO_REPLY_AFTER_DATA = "no reply after the message was sent"


def _no_reply(exc: BaseException, *, after_data: bool, relay_error: bool = False) -> Attempt:
    if after_data:
        return Attempt(
            Outcome.deferred,
            f"{NO_REPLY_AFTER_DATA} ({type(exc).__name__}): outcome unknown",
            FailureClass.unknown,
        )
    timeout = isinstance(exc, (TimeoutError, aiosmtplib.SMTPTimeoutError))
    return Attempt(
        Outcome.deferred,
        f"{'timeout' if timeout else 'connection error'} ({type(exc).__name__})",
        FailureClass.timeout if timeout else FailureClass.connection,
        relay_error=relay_error,
    )


@lru_cache(maxsize=4096)
def _quoted(address: str) -> bytes:
    """`<address>` as aiosmtplib's mail() and rcpt() put it on the wire (parsed and checked
    by aiosmtplib itself), kept: parsing the same few hundred addresses again for every
    letter was a tenth of the worker's time at 16 connections."""
    return quote_address(address).encode("ascii")


class Connection:
    """One pooled connection: opened lazily, reused, dropped after any error."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.smtp: aiosmtplib.SMTP | None = None
        self.last_used = 0.0

    async def _open(self) -> aiosmtplib.SMTP:
        relay = self.relay
        smtp = aiosmtplib.SMTP(
            hostname=relay.host,
            port=relay.port,
            timeout=relay.timeout,
            use_tls=relay.tls == "tls",
            start_tls=relay.tls == "starttls",
            username=relay.username,
            password=relay.password,
            tls_context=(
                ssl.create_default_context(cafile=relay.ca_file) if relay.tls != "none" else None
            ),
        )
        await smtp.connect(timeout=relay.connect_timeout)
        if smtp.is_ehlo_or_helo_needed:  # as mail() would: EHLO, or HELO if refused
            try:
                await smtp.ehlo()
            except aiosmtplib.SMTPHeloError:
                if not smtp.is_connected:
                    raise
                await smtp.helo()
        return smtp

    async def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        try:
            if smtp.is_connected:
                await asyncio.wait_for(smtp.quit(), timeout=2)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            smtp.close()

    async def close_if_idle(self) -> None:
        """QUIT a connection unused for longer than the idle limit: no idle sessions left open."""
        if self.smtp is not None and time.monotonic() - self.last_used > self.relay.idle_seconds:
            await self.close()

    def _drop(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is not None:
            smtp.close()

    async def _ready(self) -> aiosmtplib.SMTP:
        """An open connection; a stale idle one is checked with NOOP and replaced if dead."""
        if self.smtp is not None and time.monotonic() - self.last_used > self.relay.idle_seconds:
            try:
                await self.smtp.noop()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                self._drop()
        if self.smtp is None or not self.smtp.is_connected:
            self._drop()
            self.smtp = await self._open()
            self.last_used = time.monotonic()
        return self.smtp

    async def send(self, *, mail_from: str, rcpt: str, message: bytes) -> Attempt:
        """One transaction; the reply decides the outcome."""
        try:
            sender, recipient = _quoted(mail_from), _quoted(rcpt)
        except ValueError:
            # An address SMTP cannot carry (spaces, or non-ASCII without SMTPUTF8): no relay
            # would take it, so the letter fails instead of stopping the worker.
            return Attempt(
                Outcome.failed,
                "the address cannot be written in an SMTP command",
                FailureClass.permanent,
            )
        try:
            smtp = await self._ready()
        except aiosmtplib.SMTPResponseException as exc:
            # The relay answered, but not to a transaction of ours (greeting, EHLO, TLS, login):
            # the letter is not at fault, whatever the code.
            self._drop()
            attempt = classify(exc.code, exc.message)
            return Attempt(Outcome.deferred, attempt.reply, FailureClass.connection, True)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            self._drop()
            return _no_reply(exc, after_data=False, relay_error=True)
        after_data = False
        try:
            # MAIL and RCPT as aiosmtplib's mail() and rcpt() send them (same bytes, same
            # checks), without parsing the addresses again for every letter.
            reply = await smtp.execute_command(b"MAIL", b"FROM:" + sender)
            if reply.code != 250:
                raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, mail_from)
            reply = await smtp.execute_command(b"RCPT", b"TO:" + recipient)
            if reply.code not in (250, 251):
                raise aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, rcpt)
            after_data = True
            response = await smtp.data(message)
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code < 0:  # aiosmtplib's own "no reply" errors carry code -1
                self._drop()
                return _no_reply(exc, after_data=after_data)
            await self._reset()
            return classify(exc.code, exc.message)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            self._drop()
            return _no_reply(exc, after_data=after_data)
        self.last_used = time.monotonic()
        return classify(response.code, response.message)

    async def _reset(self) -> None:
        # After a refused transaction, RSET; reopen next time if even that fails.
        if self.smtp is None:
            return
        try:
            await self.smtp.rset()
            self.last_used = time.monotonic()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            self._drop()
