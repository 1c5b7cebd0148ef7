"""Languages: Russian (the default) and English, from gettext catalogs kept in the repository.

Catalogs live in app/i18n/locale/<lang>/LC_MESSAGES/messages.po and are compiled in memory when
first used, so the repository holds no binary .mo files. Message ids are English.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import io
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date as _format_date
from babel.dates import format_datetime as _format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
SUPPORTED = ("ru", "en")
DEFAULT = "ru"
LANGUAGE_NAMES = {"ru": "Русский", "en": "English"}

current_language: contextvars.ContextVar[str] = contextvars.ContextVar("language", default=DEFAULT)


@lru_cache(maxsize=len(SUPPORTED))
def translations(language: str) -> Translations:
    path = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as po:
        catalog = read_po(po, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(fp=compiled)


def gettext(message: str) -> str:
    return translations(current_language.get()).ugettext(message)


def N_(message: str) -> str:
    """Mark a message for the catalogs without translating it now (gettext_noop)."""
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_language.get()).ungettext(singular, plural, n)


def negotiate(accept_language: str | None) -> str:
    """The best supported language for an Accept-Language header, or the default."""
    if not accept_language:
        return DEFAULT
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        language = tag.strip().split("-")[0].lower()
        if language in SUPPORTED and quality > 0:
            weighted.append((-quality, position, language))
    return min(weighted)[2] if weighted else DEFAULT


def format_number(value: int | float) -> str:
    return format_decimal(value, locale=current_language.get())


def format_date(value: dt.date | dt.datetime, style: str = "long") -> str:
    return _format_date(value, format=style, locale=current_language.get())


def format_datetime(value: dt.datetime, style: str = "medium") -> str:
    return _format_datetime(value, format=style, locale=current_language.get())


def locale() -> Locale:
    return Locale.parse(current_language.get())
