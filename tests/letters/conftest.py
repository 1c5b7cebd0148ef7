"""Citizen-flow fixtures: a real SMTP server on loopback receiving the confirmation e-mails, an
app whose relay is that server, and a published campaign with an approved text in one region."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns.models import Campaign, CampaignStatus, VersionStatus
from app.config import Settings
from app.deputies.models import Deputy, Region
from app.letters.mailer import drain
from app.main import create_app
from tests.delivery.conftest import smtp_server
from tests.factories import (
    create_campaign,
    create_deputy,
    create_legislature,
    create_region,
    create_staff,
    create_version,
)

__all__ = ["smtp_server"]  # the delivery tests' loopback SMTP server, for letters tests too

LINK = re.compile(r"https?://\S+/(confirm|status)/([A-Za-z0-9_.-]+)")


@dataclass
class Inbox:
    """An SMTP server on 127.0.0.1 that keeps every message."""

    messages: list[EmailMessage] = field(default_factory=list)
    rcpt: list[list[str]] = field(default_factory=list)
    server: asyncio.Server | None = None
    port: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = bytes(envelope.original_content or b"")
        message = message_from_bytes(data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.rcpt.append(list(envelope.rcpt_tos))
        return "250 2.0.0 Ok"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: SMTP(self, hostname="test-inbox", loop=loop), host="127.0.0.1", port=0
        )
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def links(self, index: int = -1) -> dict[str, str]:
        body = self.messages[index].get_body(("plain",))
        assert body is not None
        return dict(LINK.findall(body.get_content()))


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    box = Inbox()
    await box.start()
    yield box
    await box.close()


@pytest.fixture
def citizen_settings(database_url: str, inbox: Inbox) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        secret_key="t" * 40,
        smtp_host="127.0.0.1",
        smtp_port=inbox.port,
        smtp_tls="none",
        public_url="http://testserver",
        limit_submit_per_address="1000/minute",
        limit_submit_per_net24="1000/minute",
        limit_submit_per_net16="1000/minute",
        limit_submit_per_email="1000/minute",
        limit_links_per_address="1000/minute",
    )


@pytest.fixture
async def citizen_app(citizen_settings: Settings, sessionmaker: Any) -> AsyncIterator[FastAPI]:
    app = create_app(citizen_settings)
    yield app
    await app.state.rate_limiter.aclose()
    await app.state.engine.dispose()


@pytest.fixture
async def citizen(citizen_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Real HTTP through the ASGI app, whose confirmation e-mails reach `inbox`."""
    transport = httpx.ASGITransport(app=citizen_app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def mail_sent(app: FastAPI) -> None:
    """Send the confirmation outbox to the SMTP server, as the delivery worker does (the ASGI
    transport runs no lifespan, hence no embedded worker)."""
    await asyncio.wait_for(drain(app.state.settings, app.state.sessionmaker), timeout=10)


@dataclass
class World:
    campaign: Campaign
    region: Region
    deputies: list[Deputy]


async def make_world(
    session: AsyncSession, *, deputies: int = 3, requires_address: bool = False, **campaign: Any
) -> World:
    region = await create_region(session, code="RU-TVE", name_ru="Тверская область", name_en="Tver")
    legislature = await create_legislature(session, region=region, code="RU-TVE-LEG")
    people = [
        await create_deputy(
            session,
            legislature=legislature,
            surname=f"Депутатов{i}",
            email=f"deputy{i}@tver.example.org",
        )
        for i in range(deputies)
    ]
    author = await create_staff(session)
    made = await create_campaign(
        session,
        slug=campaign.pop("slug", "hospital"),
        title=campaign.pop("title", "Сохраним больницу"),
        status=campaign.pop("status", CampaignStatus.published),
        requires_address=requires_address,
        **campaign,
    )
    body = (
        "{{ deputy.salutation }}!\n\nПрошу сохранить больницу.\n\n"
        "{{ citizen.full_name }}, {{ citizen.locality }}"
    )
    if requires_address:
        body += "\n{{ citizen.address }}"
    await create_version(
        session, campaign=made, author=author, status=VersionStatus.approved, body=body
    )
    await session.commit()
    return World(made, region, people)


def form(world: World, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "deputy": [str(d.id) for d in world.deputies],
        "full_name": "Мария Петрова",
        "email": "maria@example.org",
        "locality": "Тверь",
        "consent": "yes",
        "website": "",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def api_body(world: World, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "region_code": world.region.code,
        "deputy_ids": [d.id for d in world.deputies],
        "full_name": "Мария Петрова",
        "email": "maria@example.org",
        "locality": "Тверь",
        "consent": True,
    }
    data.update(changes)
    return data
