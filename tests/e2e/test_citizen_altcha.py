"""With ALTCHA on, the vendored widget solves its challenge in Chromium under the strict CSP and
the submission goes through; the page loads nothing from elsewhere."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

from tests.databases import unavailable
from tests.e2e.citizen_server import CHROMIUM, CHROMIUM_ARGS, LiveServer


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveServer]:
    server = LiveServer(
        tmp_path_factory.mktemp("e2e-altcha"), altcha=True, altcha_cost=50, altcha_max_number=200
    )
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        unavailable(f"Chromium is not installed at {CHROMIUM}")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


async def test_widget_solves_under_the_csp(live: LiveServer, browser: Browser) -> None:
    context = await browser.new_context(locale="en-GB")
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    await page.goto(live.base_url + "/campaigns/hospital/RU-TVE")
    await page.fill("#full_name", "Мария Петрова")
    await page.fill("#email", "altcha@example.org")
    await page.fill("#locality", "Тверь")
    await page.check("input[name=consent]")
    solved = page.locator("input[name=altcha]")
    await solved.wait_for(state="attached", timeout=15000)
    await page.wait_for_function(
        "() => (document.querySelector('input[name=altcha]') || {}).value", timeout=20000
    )
    await page.click("form.citizen button[type=submit]")
    assert await page.locator("article.preview").count() == 3
    await page.focus("#full_name")
    await page.wait_for_function(
        "() => (document.querySelector('input[name=altcha]') || {}).value", timeout=20000
    )
    mails = len(live.mailbox.messages)
    await page.click("form.citizen button:not(.secondary)")
    assert page.url.endswith("/check-email")
    await live.mailbox.wait_for(mails + 1)
    assert all(url.startswith(live.base_url) for url in requests), requests
    assert not [p for p in problems if "Content Security Policy" in p], problems
    await context.close()
