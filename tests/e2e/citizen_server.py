"""Browser-test helpers for the citizen flow: a real uvicorn server on a free loopback port over a
migrated, seeded SQLite database, and a real SMTP server (aiosmtpd) on loopback as its relay."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from app import migrate
from app.campaigns.models import CampaignStatus, VersionStatus
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.letters.mailer import ConfirmationSender
from app.main import create_app
from tests.factories import (
    create_campaign,
    create_deputy,
    create_legislature,
    create_region,
    create_staff,
    create_version,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
LINK = re.compile(r"https?://\S+/(?:confirm|status)/[A-Za-z0-9_.-]+")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Mailbox:
    """The aiosmtpd handler: keeps every message it receives."""

    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        parsed = message_from_bytes(bytes(envelope.original_content or b""), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 2.0.0 Ok"

    async def wait_for(self, count: int, timeout: float = 15.0) -> EmailMessage:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"no e-mail #{count} within {timeout} s")
            await asyncio.sleep(0.05)
        return self.messages[count - 1]

    @staticmethod
    def links(message: EmailMessage) -> list[str]:
        body = message.get_body(("plain",))
        assert body is not None
        return LINK.findall(body.get_content())


async def seed(database_url: str, *, deputies: int = 3) -> None:
    """A region with deputies and a published campaign with an approved text."""
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            region = await create_region(
                session, code="RU-TVE", name_ru="Тверская область", name_en="Tver Oblast"
            )
            legislature = await create_legislature(session, region=region, code="RU-TVE-LEG")
            for n in range(deputies):
                await create_deputy(
                    session,
                    legislature=legislature,
                    surname=f"Депутатов{n}",
                    email=f"deputy{n}@tver.example.org",
                )
            author = await create_staff(session)
            campaign = await create_campaign(
                session, slug="hospital", title="Сохраним больницу", status=CampaignStatus.published
            )
            await create_version(
                session,
                campaign=campaign,
                author=author,
                status=VersionStatus.approved,
                body="{{ deputy.salutation }}!\n\nПрошу сохранить больницу.\n\n"
                "{{ citizen.full_name }}, {{ citizen.locality }}",
            )
            await session.commit()
    finally:
        await engine.dispose()


class LiveServer:
    """uvicorn in a thread (its own event loop) and aiosmtpd in another, both on loopback."""

    def __init__(self, directory: Path, **settings: object) -> None:
        self.overrides = settings
        self.database_url = f"sqlite+aiosqlite:///{directory / 'e2e.sqlite3'}"
        self.mailbox = Mailbox()
        self.smtp = Controller(self.mailbox, hostname="127.0.0.1", port=free_port())
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    async def start(self) -> None:
        await asyncio.to_thread(migrate.upgrade, self.database_url)
        await seed(self.database_url)
        self.smtp.start()
        settings = Settings(
            environment="test",
            database_url=self.database_url,
            secret_key="e" * 40,
            smtp_host="127.0.0.1",
            smtp_port=self.smtp.port,
            smtp_tls="none",
            public_url=self.base_url,
            **self.overrides,  # type: ignore[arg-type]
        )
        app = create_app(settings)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        server = self.server

        async def serve() -> None:
            # The confirmation e-mails leave from the outbox through a sender of their own, as
            # from `appeals worker` beside the web service (the test setting has no embedded
            # worker, which would also send the letters).
            stopping = asyncio.Event()
            sender = ConfirmationSender(settings, app.state.sessionmaker)
            task = asyncio.create_task(sender.run(stopping, app.state.outbox_wake))
            try:
                await server.serve()
            finally:
                stopping.set()
                await task
                await sender.aclose()

        self.thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            await asyncio.to_thread(self.thread.join, 15)
        self.smtp.stop()
