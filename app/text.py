"""The one gate for text that enters: every form field, JSON string, query and path parameter.

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

Lengths and patterns go *before* the gate, `Annotated[str, StringConstraints(max_length=80),
ONE_LINE]` (or `Query(max_length=80)`, `Form(…)`, `Path(…)` in a route): so they stay in the str
schema, where the OpenAPI document shows them and pydantic checks them with its own messages, on
the cleaned text. Put after it (`Annotated[Line, StringConstraints(…)]`) they would still be
checked, but a pattern would vanish from the document.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Final

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BeforeValidator, StringConstraints

# Classed as letters (Lo) or symbols, yet shown as nothing: a "name" of three U+3164 looks empty.
FILLERS: Final = frozenset("\u115f\u1160\u3164\uffa0\u2800\u17b4\u17b5")
_MULTILINE_CONTROLS: Final = frozenset("\n\t")
_REASONS: Final = {
    "Cc": "must not contain control characters",
    "Cf": "must not contain invisible format characters",
    "Co": "must not contain private-use or unassigned characters",
    "Cn": "must not contain private-use or unassigned characters",
    "Zl": "must not contain line or paragraph separators: use plain line breaks",
    "Zp": "must not contain line or paragraph separators: use plain line breaks",
}
# Text made only of these needs no look at each character's category (most input: Russian and
# Latin text, digits, punctuation, dashes, quotes, currency signs, №); tests/test_text.py checks
# that each of them is allowed. Anything else goes through the loop in `refusal`.
PLAIN_RANGES: Final = (
    (0x20, 0x7E),  # printable ASCII
    (0xA0, 0xAC),  # Latin-1 without the soft hyphen (U+00AD, a format character)
    (0xAE, 0x36F),  # Latin-1, Latin Extended-A and -B, IPA, modifiers, combining diacritics
    (0x400, 0x52F),  # Cyrillic and its supplement
    (0x2010, 0x2027),  # dashes, quotes, bullets, ellipsis
    (0x2030, 0x205E),  # per mille, primes, guillemets and other punctuation
    (0x20A0, 0x20BF),  # currency signs
    (0x2100, 0x214F),  # letterlike symbols: №, ℃, ™
)
_PLAIN_CLASS = "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in PLAIN_RANGES)
_PLAIN_LINE: Final = re.compile(f"[{_PLAIN_CLASS}]*")
_PLAIN_LINES: Final = re.compile(f"[\\n\\t{_PLAIN_CLASS}]*")

MAX_EMAIL: Final = 254
MAX_LOCAL_PART: Final = 64


def refusal(value: str, *, multiline: bool = False) -> str | None:
    """Why this text is refused, in a few words, or None when it may enter."""
    if (_PLAIN_LINES if multiline else _PLAIN_LINE).fullmatch(value):
        return None
    for ch in value:
        if multiline and ch in _MULTILINE_CONTROLS:
            continue
        category = unicodedata.category(ch)
        if category == "Cs":
            return "must be valid Unicode text"
        if ch == "\ufffd":
            return "must be valid UTF-8 text"
        if ch in "\n\r\u2028\u2029" and not multiline:
            return "must be a single line"
        if category in _REASONS:
            return _REASONS[category]
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
    return value if value.isascii() else unicodedata.normalize("NFC", value)


def clean_line(value: object) -> object:
    """One line of text: refused as above, NFC, surrounding white space stripped."""
    checked = _text(value, multiline=False)
    return checked.strip() if isinstance(checked, str) else checked


def clean_multiline(value: object) -> object:
    """Several lines of text: refused as above (LF and tab allowed), CR LF folded to LF, NFC."""
    return _text(value, multiline=True)


def clean_folded_line(value: object) -> object:
    """One line as a name or an address is written on an envelope: as `clean_line`, and runs of
    white space folded to one space."""
    checked = _text(value, multiline=False)
    return " ".join(checked.split()) if isinstance(checked, str) else checked


def clean_secret(value: object) -> object:
    """A password, kept exactly as typed (it is only ever hashed: neither normalised nor
    stripped), but never a control character or text that is not valid Unicode."""
    if isinstance(value, str) and not _PLAIN_LINE.fullmatch(value):
        for ch in value:
            category = unicodedata.category(ch)
            if category == "Cs":
                raise ValueError("must be valid Unicode text")
            if ch == "\ufffd":
                raise ValueError("must be valid UTF-8 text")
            if category == "Cc":
                raise ValueError("must not contain control characters")
    return value


def has_a_letter(value: str) -> str:
    if not any(ch.isalpha() for ch in value):
        raise ValueError("must contain letters")
    return value


def empty_or_with_letters(value: str) -> str:
    """An optional name (a patronymic, a display name): nothing, or a name with letters."""
    return has_a_letter(value) if value else value


# A strict subset of the addresses email-validator accepts unchanged: plain lower-case ASCII, no
# IDNA labels, no special-use top-level domain. Checked first, it saves about 40 µs an address
# on large imports of deputies (bench/README.md, import of deputies); anything else goes through
# email-validator itself. tests/test_text.py checks that both paths always agree.
_PLAIN_EMAIL: Final = re.compile(
    r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)
_SPECIAL_USE_TLDS: Final = frozenset(
    {"arpa", "invalid", "local", "localhost", "onion", "home", "lan"}
)


def valid_email(value: str) -> str:
    """An address as a careful registrar takes it: at most 254 characters, a local part of at
    most 64, checked by email-validator without DNS (reserved test domains allowed)."""
    local, at, domain = value.rpartition("@")
    if len(value) > MAX_EMAIL:
        raise ValueError(f"must be at most {MAX_EMAIL} characters")
    if at and len(local) > MAX_LOCAL_PART:
        raise ValueError(f"the part before @ must be at most {MAX_LOCAL_PART} characters")
    if (
        _PLAIN_EMAIL.fullmatch(value)
        and "--" not in domain
        and domain.rsplit(".", 1)[-1] not in _SPECIAL_USE_TLDS
    ):
        return value
    try:
        result = validate_email(value, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return result.normalized


# The gate as metadata, after a type's constraints (see the module's docstring).
ONE_LINE: Final = BeforeValidator(clean_line)
MANY_LINES: Final = BeforeValidator(clean_multiline)
FOLDED_LINE: Final = BeforeValidator(clean_folded_line)
SECRET: Final = BeforeValidator(clean_secret)

# A single line of text: titles, codes, names of things, query and path parameters.
Line = Annotated[str, ONE_LINE]
# Several lines: descriptions, comments, appeal bodies.
Multiline = Annotated[str, MANY_LINES]
# A person's name: one line, white space folded, at least one letter.
PersonName = Annotated[
    str, StringConstraints(min_length=1, max_length=120), FOLDED_LINE, AfterValidator(has_a_letter)
]
EmailAddress = Annotated[
    str,
    StringConstraints(min_length=3, max_length=MAX_EMAIL),
    ONE_LINE,
    AfterValidator(valid_email),
]
# A password: as typed, without control characters.
Secret = Annotated[str, SECRET]
