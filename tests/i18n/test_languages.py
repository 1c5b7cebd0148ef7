"""Russian by default, English on request; catalogs complete; the switch never redirects away."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from app import i18n

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "ru"),
        ("en-GB,en;q=0.9", "en"),
        ("de-DE, en;q=0.5, ru;q=0.8", "ru"),
        ("fr, de", "ru"),
        ("en;q=0, ru;q=0.1", "ru"),
        ("en;q=bogus, en-US", "en"),
    ],
)
def test_accept_language_negotiation(header: str | None, expected: str) -> None:
    assert i18n.negotiate(header) == expected


async def test_russian_by_default_english_by_header(client: httpx.AsyncClient) -> None:
    russian = await client.get("/regions")
    assert "Выберите регион" in russian.text
    assert russian.headers["content-language"] == "ru"
    assert '<html lang="ru">' in russian.text
    english = await client.get("/regions", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert "Choose your region" in english.text
    assert english.headers["content-language"] == "en"
    assert "Accept-Language" in english.headers["vary"]


async def test_language_switch_remembers_the_choice(client: httpx.AsyncClient) -> None:
    switch = await client.get("/language/en", params={"next": "/regions"})
    assert switch.status_code == 303
    assert switch.headers["location"] == "/regions"
    page = await client.get("/regions", headers={"Accept-Language": "ru"})
    assert "Choose your region" in page.text


@pytest.mark.parametrize("cookie", ['a=b"c; lang=en', 'session={"x":1}; lang=en', "x=a b; lang=en"])
async def test_odd_cookies_do_not_hide_the_choice(client: httpx.AsyncClient, cookie: str) -> None:
    page = await client.get("/regions", headers={"Cookie": cookie})
    assert page.headers["content-language"] == "en"


@pytest.mark.parametrize("target", ["https://evil.example.org/", "//evil.example.org", "/\\evil"])
async def test_language_switch_is_no_open_redirect(client: httpx.AsyncClient, target: str) -> None:
    switch = await client.get("/language/ru", params={"next": target})
    assert switch.headers["location"] == "/"


async def test_unknown_language_is_422(client: httpx.AsyncClient) -> None:
    assert (await client.get("/language/xx")).status_code == 422


def test_every_message_has_a_russian_translation() -> None:
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2)}
    found = {
        message[2] if isinstance(message[2], str) else message[2][0]
        for directory, method in (("templates", "jinja2"), ("app", "python"))
        for message in extract_from_dir(
            REPO / directory,
            method_map=[("**.html" if method == "jinja2" else "**.py", method)],
            options_map={"**.html": {"extensions": "jinja2.ext.i18n"}},
            keywords=keywords,
        )
    }
    with (i18n.LOCALE_DIR / "ru" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po)
    translated = {
        (m.id if isinstance(m.id, str) else m.id[0])
        for m in catalog
        if m.id and (all(m.string) if isinstance(m.string, tuple) else m.string)
    }
    assert found
    assert sorted(found - translated) == []


def test_numbers_and_plurals_follow_the_locale() -> None:
    token = i18n.current_language.set("ru")
    try:
        assert i18n.format_number(6000) == "6\xa0000"
        assert i18n.ngettext("%(num)s deputy", "%(num)s deputies", 5) == "%(num)s депутатов"
        assert i18n.ngettext("%(num)s deputy", "%(num)s deputies", 22) == "%(num)s депутата"
    finally:
        i18n.current_language.reset(token)
    assert i18n.format_number(6000) == "6\xa0000"  # the default language is Russian
