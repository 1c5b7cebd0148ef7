"""What a citizen submits: cleaned and bounded before anything else sees it."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

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


# --- the citizen flow's JSON API (/api/v1) -----------------------------------------------------


class SubmissionIn(BaseModel):
    """A submission from a partner site: the same checks as the form (422 names the field)."""

    model_config = ConfigDict(extra="forbid")

    region_code: Annotated[str, StringConstraints(max_length=16)]
    deputy_ids: Annotated[list[int], Field(min_length=1, max_length=300)]
    full_name: Annotated[str, StringConstraints(max_length=1000)]
    email: Annotated[str, StringConstraints(max_length=1000)]
    locality: Annotated[str, StringConstraints(max_length=1000)]
    postal_address: Annotated[str, StringConstraints(max_length=1000)] = ""
    consent: bool = Field(description="The citizen agreed to the privacy notice.")
    reply_to: bool = Field(False, description="Deputies may reply to the citizen's address.")
    language: Literal["ru", "en"] | None = Field(
        None, description="The e-mail's language; default: from Accept-Language."
    )
    altcha: Annotated[str, StringConstraints(max_length=4000)] | None = Field(
        None, description="The solved proof-of-work payload, where the site requires one."
    )


class SubmissionOut(BaseModel):
    status: Literal["pending"] = "pending"
    expires_at: dt.datetime
    deputy_ids: list[int] = Field(
        description="The deputies chosen. Those this address has already written to in the "
        "campaign are skipped at confirmation, and said so there only: the answer here is the "
        "same whatever the address has done before."
    )


class ConfirmationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, StringConstraints(max_length=200)]


class LetterStatusOut(BaseModel):
    id: int
    deputy_id: int
    deputy_name: str
    status: Literal["queued", "sent", "failed", "cancelled"]
    cancellable: bool


class StatusOut(BaseModel):
    submission: Literal["pending", "confirmed", "erased"]
    campaign: str
    letters: list[LetterStatusOut]
    skipped_deputy_ids: list[int]


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    letter_ids: Annotated[list[int], Field(max_length=300)] | None = Field(
        None, description="The letters to cancel; none given: every letter not yet sent."
    )


class OpenCampaignOut(BaseModel):
    slug: str
    title: str
    description: str
    requires_address: bool
