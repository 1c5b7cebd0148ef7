"""The one gate for text that enters: every form field, JSON string and query parameter.

Public and staff input alike passes these types, so that the same text is refused the same way on
SQLite (which stores a NUL) and PostgreSQL (whose driver refuses one), with a 422 that names the
field, before any database or e-mail header sees it. What is refused:

- NUL and every other control character (Unicode category Cc); in multi-line fields a newline and a
  tab are text, and CR LF is folded to LF;
- format characters (category Cf: bidi overrides, zero-width joiners, the soft hyphen, U+061C,
  U+2060-U+2064, U+180E, U+FFF9-U+FFFB, tag characters…), which disguise a name or an address;
- line and paragraph separators (U+2028, U+2029) and the invisible fillers that Unicode classes as
  letters (Hangul fillers, the braille blank);
- unpaired surrogates (text that is not valid Unicode), and U+FFFD, which is what undecodable bytes
  become: the input was not valid UTF-8;
- private-use and unassigned code points, which no font shows the same way.

Text is NFC-normalised, so that a name typed on two keyboards is stored once.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Final

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BeforeValidator, StringConstraints

# Classed as letters (Lo) or symbols, yet shown as nothing: a "name" of three U+3164 looks empty.
FILLERS: Final = frozenset("\u115f\u1160\u3164\uffa0\u2800\u17b4\u17b5")
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_MULTILINE_CONTROLS: Final = frozenset("\n\t")

MAX_EMAIL: Final = 254
MAX_LOCAL_PART: Final = 64


def refusal(value: str, *, multiline: bool = False) -> str | None:
    """Why this text is refused, in a few words, or None when it may enter."""
    if value.isascii():
        # The common case, checked without a loop over the characters' categories.
        allowed = _MULTILINE_CONTROLS if multiline else frozenset()
        if all(" " <= ch < "\x7f" or ch in allowed for ch in value):
            return None
    for ch in value:
        if multiline and ch in _MULTILINE_CONTROLS:
            continue
        category = unicodedata.category(ch)
        if category == "Cs":
            return "must be valid Unicode text"
        if ch == "\ufffd":
            return "must be valid UTF-8 text"
        if ch in "\n\r\u2028\u2029":
            return "must be a single line"
        if category in _REFUSED_CATEGORIES:
            return "must not contain control or invisible characters"
        if ch in FILLERS:
            return "must not contain invisible filler characters"
    return None


def _text(value: object, *, multiline: bool) -> object:
    if not isinstance(value, str):
        return value  # the type check that follows names it
    if multiline:
        value = value.replace("\r\n", "\n")
    reason = refusal(value, multiline=multiline)
    if reason is not None:
        raise ValueError(reason)
    return unicodedata.normalize("NFC", value)


def clean_line(value: object) -> object:
    """One line of text: refused as above, NFC, surrounding white space stripped."""
    checked = _text(value, multiline=False)
    return checked.strip() if isinstance(checked, str) else checked


def clean_multiline(value: object) -> object:
    """Several lines of text: refused as above (LF and tab allowed), CR LF folded to LF, NFC."""
    return _text(value, multiline=True)


def fold_spaces(value: str) -> str:
    """Runs of white space as one space, as a name or an address is written on an envelope."""
    return " ".join(value.split())


def has_a_letter(value: str) -> str:
    if not any(ch.isalpha() for ch in value):
        raise ValueError("must contain letters")
    return value


def valid_email(value: str) -> str:
    """An address as a careful registrar takes it: at most 254 characters, a local part of at
    most 64, checked by email-validator without DNS (reserved test domains allowed)."""
    local, at, _ = value.rpartition("@")
    if len(value) > MAX_EMAIL:
        raise ValueError(f"must be at most {MAX_EMAIL} characters")
    if at and len(local) > MAX_LOCAL_PART:
        raise ValueError(f"the part before @ must be at most {MAX_LOCAL_PART} characters")
    try:
        result = validate_email(value, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return result.normalized


# A single line of text: titles, codes, names of things, query parameters.
Line = Annotated[str, BeforeValidator(clean_line)]
# Several lines: descriptions, comments, appeal bodies.
Multiline = Annotated[str, BeforeValidator(clean_multiline)]
# A person's name: one line, white space folded, at least one letter.
PersonName = Annotated[
    Line,
    AfterValidator(fold_spaces),
    StringConstraints(min_length=1, max_length=120),
    AfterValidator(has_a_letter),
]
EmailAddress = Annotated[
    Line, StringConstraints(min_length=3, max_length=MAX_EMAIL), AfterValidator(valid_email)
]
