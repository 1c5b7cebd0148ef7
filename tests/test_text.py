"""The one gate for text (app.text): what enters, what is refused and why, named by field."""

from __future__ import annotations

import csv
import unicodedata
from pathlib import Path
from typing import Annotated

import pytest
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, StringConstraints, TypeAdapter, ValidationError

from app.text import (
    FILLERS,
    MAX_EMAIL,
    MAX_LOCAL_PART,
    ONE_LINE,
    PLAIN_RANGES,
    EmailAddress,
    Line,
    Multiline,
    PersonName,
    Secret,
    refusal,
    valid_email,
)

DATA = Path(__file__).resolve().parent.parent / "deputies_data"


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


def test_what_needs_no_look_at_each_character_is_allowed() -> None:
    # The fast path of `refusal` lets these through unseen: each must be allowed by the loop too.
    for low, high in PLAIN_RANGES:
        for code in range(low, high + 1):
            ch = chr(code)
            category = unicodedata.category(ch)
            assert category[0] != "C", hex(code)
            assert category not in ("Zl", "Zp"), hex(code)
            assert ch not in FILLERS, hex(code)
    assert refusal("Мария Ивановна, д. 5 — «Ёлка» № 3 € ₽") is None
    assert refusal("строка\nи\tещё", multiline=True) is None


def test_a_carriage_return_alone_is_refused_in_several_lines_too() -> None:
    assert _error(body="one\rtwo")[0] == "body"
    assert _error(body="one\u2028two")[0] == "body"


def test_constraints_before_the_gate_stay_in_the_schema() -> None:
    code = TypeAdapter(
        Annotated[str, StringConstraints(max_length=6, pattern=r"^[A-Z-]+$"), ONE_LINE]
    )
    assert code.json_schema() == {"type": "string", "maxLength": 6, "pattern": r"^[A-Z-]+$"}
    assert code.validate_python(" RU-MOW ") == "RU-MOW"  # checked after the gate strips it
    with pytest.raises(ValidationError) as caught:
        code.validate_python("RU-MO\x00")
    assert "control" in caught.value.errors()[0]["msg"]


def test_a_password_is_kept_as_typed_without_control_characters() -> None:
    secret = TypeAdapter(Secret)
    assert secret.validate_python(" пароль\u200d ") == " пароль\u200d "
    for value in ("a\x00b", "a\tb", "a" + chr(0xD800), "a\ufffd"):
        with pytest.raises(ValidationError):
            secret.validate_python(value)


# --- addresses: the fast path for plain ones (the import of deputies) and the full check -------

TRICKY = [
    "a@b.example.org", "ivanov.ip@ru-mow.example.org", "x@foo.test", "a..b@example.org",
    ".a@example.org", "a.@example.org", "a@-b.example.org", "a@b-.example.org",
    "a@xn--80ak6aa92e.com", "a@xn--zz.com", "a@example.local", "a@localhost", "a@example.onion",
    "a@123.456", "A@Example.org", "a@EXAMPLE.ORG", "a" * 65 + "@example.org",
    "a@" + "b" * 64 + ".org", "a@" + ("b" * 60 + ".") * 5 + "org", "user+tag@sub.example.org",
    "user_name@example.org", "a@b.c", "a@b.co", "a@exa_mple.org", "иван@пример.рф",
    "a@b..example.org", "a@.example.org", "a b@example.org", "a@example.org.",
]  # fmt: skip


def _reference(address: str) -> str | None:
    if len(address) > MAX_EMAIL or len(address.rpartition("@")[0]) > MAX_LOCAL_PART:
        return None  # (email-validator itself takes a local part of 65 characters)
    try:
        normalized: str = validate_email(
            address, check_deliverability=False, test_environment=True
        ).normalized
    except EmailNotValidError:
        return None
    return normalized


def _ours(address: str) -> str | None:
    try:
        return valid_email(address)
    except ValueError:
        return None


@pytest.mark.parametrize("address", TRICKY)
def test_the_fast_path_for_addresses_agrees_with_email_validator(address: str) -> None:
    assert _ours(address) == _reference(address)


def test_the_fast_path_agrees_on_every_deputy_of_the_sample() -> None:
    with (DATA / "deputies.csv").open(encoding="utf-8", newline="") as f:
        emails = [row["email"] for row in csv.DictReader(f)]
    assert [_ours(e) for e in emails] == [_reference(e) for e in emails]
