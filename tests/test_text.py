"""The one gate for text (app.text): what enters, what is refused and why, named by field."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from app.text import EmailAddress, Line, Multiline, PersonName, refusal


class Form(BaseModel):
    line: Line = ""
    body: Multiline = ""
    name: PersonName = "Мария"
    email: EmailAddress = "maria@example.org"


def _error(**fields: object) -> tuple[str, str]:
    with pytest.raises(ValidationError) as caught:
        Form.model_validate(fields)
    error = caught.value.errors()[0]
    return str(error["loc"][0]), str(error["msg"])


@pytest.mark.parametrize(
    "value",
    [
        "a\x00b",  # NUL: PostgreSQL refuses it, SQLite would store it
        "a\x07b",
        "a\x85b",  # C1 next line
        "a\u2028b",
        "a\u202eb",  # bidi override
        "a\u200bb",  # zero-width space
        "a\u061cb",  # Arabic letter mark
        "a\u2060b",  # word joiner
        "a\u2062b",  # invisible times
        "a\u00adb",  # soft hyphen
        "a\u180eb",  # Mongolian vowel separator
        "a\ufff9b",  # interlinear annotation anchor
        "a\U000e0041b",  # tag character
        "a\ufeffb",
        "a" + chr(0xD800) + "b",  # unpaired surrogate
        "a\ufffdb",  # what undecodable bytes become
        "a\ue000b",  # private use
        "a\u3164b",  # Hangul filler
    ],
)
def test_refused_everywhere(value: str) -> None:
    assert refusal(value) is not None
    assert refusal(value, multiline=True) is not None
    field, _ = _error(line=value)
    assert field == "line"
    field, _ = _error(body=value)
    assert field == "body"


def test_newlines_only_where_a_field_is_multiline() -> None:
    assert _error(line="one\ntwo") == ("line", "Value error, must be a single line")
    assert Form.model_validate({"body": "one\r\ntwo\tthree"}).body == "one\ntwo\tthree"


def test_text_is_normalised_and_stripped() -> None:
    form = Form.model_validate({"line": "  Е\u0308лка ", "name": "  Мария   Ивановна "})
    assert form.line == "Ёлка"
    assert form.name == "Мария Ивановна"


@pytest.mark.parametrize("name", ["\u3164\u3164\u3164", "123", "...", " "])
def test_a_name_needs_a_letter(name: str) -> None:
    field, _ = _error(name=name)
    assert field == "name"


def test_addresses_as_a_registrar_takes_them() -> None:
    assert (
        Form.model_validate({"email": "a" * 64 + "@example.org"}).email == "a" * 64 + "@example.org"
    )
    field, message = _error(email="a" * 65 + "@example.org")
    assert (field, "64" in message) == ("email", True)
    too_long = "a" * 64 + "@" + ".".join(["d" * 62] * 3) + ".org"  # 257 characters
    field, message = _error(email=too_long)
    assert (field, "254" in message) == ("email", True)
    field, _ = _error(email="maria@example.org\x00")
    assert field == "email"


def test_non_strings_are_left_to_the_type_check() -> None:
    field, message = _error(line=5)
    assert field == "line"
    assert "string" in message
