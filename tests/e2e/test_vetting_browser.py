"""In a real browser (Playwright driving Debian's Chromium) against a real uvicorn server:
an editor writes a text and sends it for review, another staff member (a lawyer) approves it,
and the editor publishes the campaign. Runs on SQLite only: the browser is what is under test."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from app import migrate
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.main import create_app
from app.staff import service as staff_service
from app.staff.models import Role
from tests.databases import unavailable

CHROMIUM = Path("/usr/bin/chromium")
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
PASSWORD = "correct-horse-battery-staple"
EDITOR = "editor@campaign.example.org"
LAWYER = "lawyer@campaign.example.org"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _seed(settings: Settings) -> None:
    engine = create_engine(settings.database_url)
    async with create_sessionmaker(engine)() as session:
        for email, roles in ((EDITOR, {Role.editor}), (LAWYER, {Role.lawyer})):
            await staff_service.create_staff(
                session, email=email, password=PASSWORD, roles=roles, settings=settings, actor=None
            )
        await session.commit()
    await engine.dispose()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A uvicorn server on a free loopback port, on a fresh, migrated SQLite database."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'e2e.sqlite3'}"
    migrate.upgrade(url)
    settings = Settings(environment="test", database_url=url, secret_key="e" * 40)
    asyncio.run(_seed(settings))
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_write_review_approve_publish(server: str) -> None:
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import Page, expect, sync_playwright

    foreign: list[str] = []

    def log_in(page: Page, email: str) -> None:
        page.goto(f"{server}/staff/login")
        page.get_by_label("Эл. почта").fill(email)
        page.get_by_label("Пароль").fill(PASSWORD)
        page.get_by_role("button", name="Войти").click()
        expect(page.get_by_role("heading", name="Кабинет")).to_be_visible()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on(
                "request",
                lambda request: (
                    None if request.url.startswith(server) else foreign.append(request.url)
                ),
            )
            page.set_default_timeout(10_000)

            # The editor creates a campaign and writes a text.
            log_in(page, EDITOR)
            page.get_by_role("link", name="Кампании").first.click()
            page.get_by_role("link", name="Новая кампания").click()
            page.get_by_label("Название").fill("Чистая вода")
            page.get_by_label("Адрес (латиница, цифры, дефисы)").fill("clean-water")
            page.get_by_label("Описание для граждан").fill("Обращение о качестве воды.")
            page.get_by_role("button", name="Сохранить").click()
            expect(page.get_by_role("heading", name="Чистая вода")).to_be_visible()
            page.get_by_role("link", name="Новый текст").click()
            page.get_by_label("Название текста (для сотрудников)").fill("Основной текст")
            page.get_by_label("Тема письма (шаблон, одна строка)").fill(
                "О воде: {{ deputy.surname }}"
            )
            # A forbidden construct is refused, and what was typed stays in the form.
            page.get_by_label("Текст письма (шаблон)").fill("{{ ''.__class__.__mro__ }}")
            page.get_by_role("button", name="Сохранить черновик").click()
            expect(page.locator("#editor-error")).to_contain_text("__mro__")
            page.get_by_label("Текст письма (шаблон)").fill(
                "{{ deputy.salutation }}!\n\nПрошу проверить воду.\n\n{{ citizen.full_name }}"
            )
            page.get_by_role("button", name="Сохранить черновик").click()
            expect(page.locator("[data-status]").first).to_have_attribute("data-status", "draft")
            page.get_by_role("button", name="Отправить юристу на проверку").click()
            expect(page.locator("[data-status]").first).to_have_attribute(
                "data-status", "in_review"
            )
            # Not publishable yet: no approved version.
            page.get_by_role("link", name="Чистая вода").click()
            page.get_by_role("button", name="Опубликовать").click()
            expect(page.locator(".error-message")).to_contain_text("no approved text")
            page.go_back()
            page.get_by_role("button", name="Выйти").click()

            # Another staff member, a lawyer, approves it.
            log_in(page, LAWYER)
            page.get_by_role("link", name="На проверке").first.click()
            page.get_by_role("link", name="v1").click()
            page.get_by_label("Комментарий (необязательно)").fill("Формулировки безопасны.")
            page.get_by_role("button", name="Одобрить").click()
            expect(page.locator("[data-status]").first).to_have_attribute("data-status", "approved")
            expect(page.locator("#review-comment")).to_have_text("Формулировки безопасны.")
            page.get_by_role("button", name="Выйти").click()

            # The editor publishes the campaign.
            log_in(page, EDITOR)
            page.get_by_role("link", name="Кампании").first.click()
            page.get_by_role("link", name="Чистая вода").click()
            expect(page.locator("#approved-count")).to_have_text("1")
            page.get_by_role("button", name="Опубликовать").click()
            expect(page.locator("[data-status]").first).to_have_attribute(
                "data-status", "published"
            )
        finally:
            browser.close()
    assert foreign == [], f"requests left the site: {foreign}"
