"""The sender's data is normalised and bounded; nothing in it can forge a header."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.letters.schemas import SenderIn

GOOD = {"full_name": "Анна Петрова", "email": "anna@example.org", "locality": "Тверь"}


def _errors(**changes: str) -> dict[str, str]:
    with pytest.raises(ValidationError) as failed:
        SenderIn.model_validate({**GOOD, **changes})
    return {str(e["loc"][0]): str(e["msg"]) for e in failed.value.errors()}


def test_names_are_nfc_and_folded() -> None:
    decomposed = "Ане\u0308ля  И\u0306ова "  # е + combining diaeresis, И + combining breve
    sender = SenderIn.model_validate({**GOOD, "full_name": decomposed})
    assert sender.full_name == "Анёля Йова"


@pytest.mark.parametrize(
    "name",
    [
        "Анна\r\nBcc: x@example.org",
        "Анна\nПетрова",
        "Анна\x00",
        "Анна\u2028Петрова",
        "Анна\u202eавортеП",  # a right-to-left override disguising the name
        "Анна\u200bПетрова",
    ],
)
def test_control_and_invisible_characters_are_refused(name: str) -> None:
    assert "full_name" in _errors(full_name=name)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("full_name", "Я"),
        ("full_name", "А" * 121),
        ("full_name", "12 34"),
        ("locality", ""),
        ("email", "no-at-sign"),
        ("email", "a@b@example.org"),
        ("postal_address", "д" * 301),
    ],
)
def test_bad_values_name_their_field(field: str, value: str) -> None:
    assert field in _errors(**{field: value})


def test_unknown_fields_are_refused() -> None:
    assert "ip_address" in _errors(ip_address="203.0.113.1")
