"""The citizen's whole flow in a real browser (Chromium through Playwright), with JavaScript off
and on: the confirmation e-mail is received by a real SMTP server and its link followed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, async_playwright
from sqlalchemy import func, select

from app.db import create_engine, create_sessionmaker
from app.letters.models import Letter, LetterStatus
from tests.databases import unavailable
from tests.e2e.citizen_server import CHROMIUM, CHROMIUM_ARGS, LiveServer


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("e2e"))
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


async def _page(browser: Browser, *, javascript: bool) -> Page:
    context = await browser.new_context(
        java_script_enabled=javascript, locale="en-GB", viewport={"width": 360, "height": 740}
    )
    return await context.new_page()


async def _letters(live: LiveServer) -> dict[LetterStatus, int]:
    engine = create_engine(live.database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            rows = await session.execute(
                select(Letter.status, func.count()).group_by(Letter.status)
            )
            return {LetterStatus(status): n for status, n in rows.all()}
    finally:
        await engine.dispose()


async def _fill(page: Page, *, name: str, email: str) -> None:
    await page.fill("#full_name", name)
    await page.fill("#email", email)
    await page.fill("#locality", "Тверь")
    await page.check("input[name=consent]")


@pytest.mark.parametrize("javascript", [False, True], ids=["no-js", "js"])
async def test_whole_flow_in_a_browser(
    live: LiveServer, browser: Browser, javascript: bool
) -> None:
    page = await _page(browser, javascript=javascript)
    before = sum((await _letters(live)).values())
    email = f"{'js' if javascript else 'nojs'}@example.org"
    await page.goto(live.base_url + "/")
    assert await page.locator("h1").inner_text() == "Write to your regional deputies"
    await page.click("text=Сохраним больницу")
    await page.click("text=Tver Oblast")
    boxes = page.locator("input[name=deputy]")
    assert await boxes.count() == 3
    for n in range(3):
        assert await boxes.nth(n).is_checked()
    await boxes.nth(2).uncheck()
    await _fill(page, name="Мария Петрова", email=email)
    await page.click("form.citizen button[type=submit]")
    assert await page.locator("article.preview").count() == 2
    assert "Мария Петрова, Тверь" in await page.locator("article.preview").first.inner_text()
    mails = len(live.mailbox.messages)
    await page.click("form.citizen button:not(.secondary)")
    assert page.url.endswith("/check-email")

    message = await live.mailbox.wait_for(mails + 1)
    assert message["To"] == email
    confirm, status = live.mailbox.links(message)
    await page.goto(confirm)
    await page.click("button[type=submit]")
    assert "2 letters are on their way" in await page.locator("main").inner_text()
    assert sum((await _letters(live)).values()) == before + 2

    # The replayed link changes nothing and says so.
    await page.goto(confirm)
    assert "already been used" in await page.locator("main").inner_text()

    await page.goto(status)
    assert await page.locator("tbody tr").count() == 2
    await page.locator("input[name=letter]").first.check()
    await page.click("text=Cancel the selected letters")
    assert "cancelled" in await page.locator("tbody").inner_text()
    await page.check("input[name=sure]")
    await page.click("button.danger")
    assert "has been erased" in await page.locator("main").inner_text()
    await page.context.close()


async def test_errors_beside_fields_and_names_shown_escaped(
    live: LiveServer, browser: Browser
) -> None:
    page = await _page(browser, javascript=False)
    await page.goto(live.base_url + "/campaigns/hospital/RU-TVE")
    await _fill(page, name="12345", email="someone@example.org")
    await page.click("form.citizen button[type=submit]")
    error = page.locator("#full_name-error")
    assert await error.is_visible()
    assert await page.input_value("#email") == "someone@example.org"
    assert await page.input_value("#full_name") == "12345"

    await page.fill("#full_name", "Анна <script>document.title='x'</script>")
    await page.click("form.citizen button[type=submit]")
    text = await page.locator("article.preview").first.inner_text()
    assert "<script>document.title='x'</script>" in text  # shown as text, not run
    assert await page.title() != "x"
    await page.context.close()
