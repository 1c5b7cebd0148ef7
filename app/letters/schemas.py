"""What a citizen submits: cleaned and bounded before anything else sees it."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, StringConstraints

from app.deputies.schemas import _valid_email

# Control characters (C0, C1), line and paragraph separators, and invisible format characters
# (bidi overrides, zero-width joiners) could forge headers or disguise a name.
_FORBIDDEN = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)
_SPACES = re.compile(r"\s+")


def clean_line(value: object) -> object:
    """NFC, no control or invisible characters, runs of white space folded to one space."""
    if not isinstance(value, str):
        return value
    value = unicodedata.normalize("NFC", value)
    if _FORBIDDEN.search(value):
        raise ValueError("must be a single line without control characters")
    return _SPACES.sub(" ", value).strip()


def _has_a_letter(value: str) -> str:
    if not any(ch.isalpha() for ch in value):
        raise ValueError("must contain letters")
    return value


Line = Annotated[str, BeforeValidator(clean_line)]
FullName = Annotated[
    Line, StringConstraints(min_length=3, max_length=120), AfterValidator(_has_a_letter)
]
Locality = Annotated[Line, StringConstraints(min_length=2, max_length=120)]
PostalAddress = Annotated[Line, StringConstraints(max_length=300)]
Email = Annotated[
    Line, StringConstraints(min_length=3, max_length=254), AfterValidator(_valid_email)
]


class SenderIn(BaseModel):
    """The sender's data, the minimum the letters need."""

    model_config = ConfigDict(extra="forbid")

    full_name: FullName
    email: Email
    locality: Locality
    postal_address: PostalAddress = ""
