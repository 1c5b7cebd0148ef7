"""Browser test of the statistics dashboard: a real `appeals serve` on a free loopback port over a
migrated SQLite database seeded with letters; an analyst logs in through the form and the page
shows its tables and its three server-drawn charts, which really load (naturalWidth > 0), with no
Content-Security-Policy violation. Fixtures are local to this module."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app import migrate
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.staff.models import Role
from tests.databases import fresh_database, unavailable
from tests.factories import STAFF_PASSWORD, create_staff
from tests.stats.seed import SENDER_EMAIL, seed

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
APPEALS = str(Path(sys.executable).with_name("appeals"))
SECRET = "e2e-stats-" + "s" * 32
ANALYST = "analyst@campaign.example.org"


@dataclass
class Server:
    base_url: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def stats_server(tmp_path: Path) -> AsyncIterator[Server]:
    async with fresh_database("sqlite", tmp_path) as url:
        await asyncio.to_thread(migrate.upgrade, url)
        settings = Settings(environment="test", database_url=url, secret_key=SECRET)
        engine = create_engine(url)
        async with create_sessionmaker(engine)() as session:
            await seed(session, settings)
            await create_staff(session, Role.analyst, email=ANALYST)
            await session.commit()
        await engine.dispose()
        port = _free_port()
        env = {
            **os.environ,
            "APPEALS_DATABASE_URL": url,
            "APPEALS_SECRET_KEY": SECRET,
            "APPEALS_EMBEDDED_WORKER": "false",
        }
        process = await asyncio.create_subprocess_exec(
            APPEALS, "serve", "--host", "127.0.0.1", "--port", str(port), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        base_url = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=base_url) as client:
                for _ in range(150):
                    try:
                        await client.get("/healthz")
                        break
                    except httpx.ConnectError:
                        await asyncio.sleep(0.1)
                else:
                    pytest.fail("appeals serve did not answer within 15 s")
            yield Server(base_url=base_url)
        finally:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 10)


async def test_analyst_sees_the_dashboard_with_its_charts(stats_server: Server) -> None:
    if not Path(CHROMIUM).exists():
        unavailable(f"Chromium is not installed at {CHROMIUM}")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(locale="en-US")
            problems: list[str] = []
            # CSP violations and failed loads, except the favicon that browsers ask for.
            page.on(
                "console",
                lambda m: problems.append(m.text) if "Refused" in m.text else None,
            )
            page.on(
                "response",
                lambda r: (
                    problems.append(f"{r.status} {r.url}")
                    if r.status >= 400 and not r.url.endswith("/favicon.ico")
                    else None
                ),
            )
            outside: list[str] = []
            page.on(
                "request",
                lambda r: (
                    None if r.url.startswith(stats_server.base_url) else outside.append(r.url)
                ),
            )
            await page.goto(f"{stats_server.base_url}/staff/stats")
            assert "/staff/login" in page.url  # anonymous: sent to the login page
            await page.fill("#email", ANALYST)
            await page.fill("#password", STAFF_PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url("**/staff/stats")
            assert await page.locator("h1").inner_text() == "Statistics"
            assert await page.locator("table.totals").count() == 1
            assert "save-hospital" in await page.content()
            assert SENDER_EMAIL not in await page.content()

            async def chart_widths() -> list[int]:
                charts = page.locator("figure.chart img")
                assert await charts.count() == 3
                await page.wait_for_function(
                    "Array.from(document.querySelectorAll('figure.chart img'))"
                    ".every(i => i.complete)"
                )
                widths: list[int] = await charts.evaluate_all(
                    "images => images.map(i => i.naturalWidth)"
                )
                return widths

            assert all(w > 0 for w in await chart_widths())

            # Filter to one campaign and region: the charts follow.
            await page.select_option("select[name=campaign]", "save-hospital")
            await page.select_option("select[name=region]", "RU-TSA")
            await page.click("form.filters button[type=submit]")
            await page.wait_for_url("**campaign=save-hospital**")
            assert all(w > 0 for w in await chart_widths())
            sources = await page.locator("figure.chart img").evaluate_all(
                "images => images.map(i => i.getAttribute('src'))"
            )
            assert all("campaign=save-hospital" in s for s in sources)
            assert problems == []
            assert outside == []
        finally:
            await browser.close()
