"""Delivery fixtures: real SMTP servers (aiosmtpd) on loopback with scripted replies, settings
with short timeouts and leases, and helpers to run workers until the queue is final."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.delivery.worker import Worker
from app.letters.models import FINAL, Letter, LetterMessage
from tests.factories import create_deputy, create_letter

APPEALS = str(Path(sys.executable).with_name("appeals"))

# What the server does with one DATA: a reply line, "drop" (close without replying once the
# message is in), or ("sleep", seconds, reply).
Action = str | tuple[str, float, str]
Behaviour = Callable[[int, "Received"], Action]


@dataclass
class Received:
    message_id: str
    rcpt: list[str]
    data: bytes
    at: float

    def parsed(self) -> EmailMessage:
        message = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message


@dataclass
class SmtpServer:
    """An SMTP server on 127.0.0.1 that records every message it is given (accepted or not)."""

    behaviour: Behaviour | None = None
    received: list[Received] = field(default_factory=list)
    accepted: list[Received] = field(default_factory=list)
    connections: int = 0
    active: int = 0  # transactions in DATA right now, and the most at once
    max_active: int = 0
    server: asyncio.Server | None = None
    port: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = bytes(envelope.original_content or b"")
        header = message_from_bytes(data, policy=policy.default).get("Message-ID", "")
        item = Received(str(header), list(envelope.rcpt_tos), data, time.monotonic())
        self.received.append(item)
        action: Action = "250 2.0.0 Ok: queued"
        if self.behaviour is not None:
            action = self.behaviour(len(self.received), item)
        if action == "drop":
            assert isinstance(server.transport, asyncio.Transport)
            server.transport.abort()
            return "421 never seen"
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if isinstance(action, tuple):
                _, seconds, action = action
                await asyncio.sleep(seconds)
        finally:
            self.active -= 1
        if action.startswith("2"):
            self.accepted.append(item)
        return action

    async def start(self, port: int = 0) -> None:
        loop = asyncio.get_running_loop()

        def factory() -> Any:
            self.connections += 1
            return SMTP(self, hostname="test-relay", loop=loop, timeout=30)

        self.server = await loop.create_server(factory, host="127.0.0.1", port=port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    def message_ids(self) -> list[str]:
        return [r.message_id for r in self.received]


@pytest.fixture
async def smtp_server() -> AsyncIterator[SmtpServer]:
    server = SmtpServer()
    await server.start()
    yield server
    await server.stop()


def relay_settings(settings: Settings, port: int, **overrides: Any) -> Settings:
    """Settings for a worker sending to a test relay on loopback, fast and unthrottled."""
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_tls": "none",
        "smtp_connect_timeout": 1.0,
        "smtp_timeout": 1.0,
        "smtp_pool_size": 2,
        "mail_from": "appeals@appeals.example",
        "send_rate": 100_000.0,
        "domain_rate": 100_000.0,
        "domain_concurrency": 4,
        "breaker_threshold": 1_000,
        "breaker_pause_seconds": 0.5,
        "worker_batch_size": 200,
        "worker_poll_seconds": 0.05,
        "lease_seconds": 30.0,
        "retry_base_seconds": 0.05,
        "retry_max_seconds": 0.2,
        "purge_interval_seconds": 3600.0,
    }
    values.update(overrides)
    return settings.model_copy(update=values)


@pytest.fixture
def delivery_settings(settings: Settings, smtp_server: SmtpServer) -> Settings:
    return relay_settings(settings, smtp_server.port)


async def count_unfinished(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        n = await session.scalar(
            select(func.count()).select_from(Letter).where(Letter.status.not_in(FINAL))
        )
    return int(n or 0)


async def drain(
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    timeout: float = 20.0,
    until: Callable[[], Awaitable[bool]] | None = None,
) -> Worker:
    """Run one worker (`--once` cycles) until every letter is final, or `until()` holds."""
    worker = Worker(settings, engine=engine)
    deadline = time.monotonic() + timeout
    try:
        while True:
            await worker.run(once=True)
            done = await until() if until else await count_unfinished(sessionmaker) == 0
            if done:
                return worker
            assert time.monotonic() < deadline, "letters still unfinished at the deadline"
            await asyncio.sleep(0.05)
    finally:
        await worker.close()


async def letters(sessionmaker: async_sessionmaker[AsyncSession]) -> list[Letter]:
    async with sessionmaker() as session:
        return list(await session.scalars(select(Letter).order_by(Letter.id)))


async def as_a_request(session: AsyncSession) -> None:
    """Begin as a web request that writes does (app.dependencies): on SQLite, with the write
    lock, so that the worker's commits in between cannot make it fail with "database is locked"."""
    await session.connection(execution_options={"sqlite_begin": "BEGIN IMMEDIATE"})


async def queue_copies(url: str, settings: Settings, *, n: int, domains: int) -> None:
    """Queue `n` letters to deputies on `domains` domains, fast: one letter per deputy through
    the real service, the others copies of it (row and message) under Message-IDs of their own."""
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            deputies = [
                await create_deputy(session, email=f"deputy{i}@duma{i}.example.org")
                for i in range(domains)
            ]
            models = [
                await create_letter(session, settings=settings, deputy=deputy)
                for deputy in deputies
            ]
            await session.commit()
        letter_table: Table = Letter.__table__  # type: ignore[assignment]
        async with engine.begin() as conn:
            rows = {r.id: dict(r._mapping) for r in await conn.execute(select(letter_table))}
            bodies = dict(
                (await conn.execute(select(LetterMessage.letter_id, LetterMessage.message))).all()
            )
            letter_rows, message_rows = [], []
            next_id = max(rows) + 1
            for i in range(n - len(models)):
                model = models[i % len(models)]
                row = dict(rows[model.id], id=next_id)
                row["message_id"] = f"<copy{next_id}.{uuid.uuid4().hex[:12]}@appeals.example>"
                message = bodies[model.id].replace(
                    model.message_id.encode(), row["message_id"].encode()
                )
                letter_rows.append(row)
                message_rows.append({"letter_id": next_id, "message": message})
                next_id += 1
            if letter_rows:
                await conn.execute(insert(letter_table), letter_rows)
                await conn.execute(insert(LetterMessage), message_rows)
    finally:
        await engine.dispose()


def worker_env(settings: Settings, port: int, **extra: str) -> dict[str, str]:
    """The environment of an `appeals worker` process sending to a test relay on loopback, fast
    and unthrottled (`extra` adds or overrides APPEALS_ variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPEALS_")}
    env.update(
        APPEALS_ENVIRONMENT="test",
        APPEALS_DATABASE_URL=settings.database_url,
        APPEALS_SMTP_HOST="127.0.0.1",
        APPEALS_SMTP_PORT=str(port),
        APPEALS_SMTP_TLS="none",
        APPEALS_SMTP_TIMEOUT="2",
        APPEALS_SMTP_POOL_SIZE="2",
        APPEALS_MAIL_FROM="appeals@appeals.example",
        APPEALS_SEND_RATE="100000",
        APPEALS_DOMAIN_RATE="100000",
        APPEALS_DOMAIN_CONCURRENCY="8",
        APPEALS_WORKER_POLL_SECONDS="0.05",
        APPEALS_RETRY_BASE_SECONDS="0.05",
        APPEALS_RETRY_MAX_SECONDS="0.2",
        APPEALS_LEASE_SECONDS="2",
    )
    env.update(extra)
    return env
