"""What a citizen submits: cleaned and bounded before anything else sees it."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from app.text import FOLDED_LINE, ONE_LINE, EmailAddress, has_a_letter

# Names and places as written on an envelope (app.text: no control, format or filler characters,
# NFC, white space folded).
FullName = Annotated[
    str, StringConstraints(min_length=3, max_length=120), FOLDED_LINE, AfterValidator(has_a_letter)
]
Locality = Annotated[str, StringConstraints(min_length=2, max_length=120), FOLDED_LINE]
PostalAddress = Annotated[str, StringConstraints(max_length=300), FOLDED_LINE]
RegionCode = Annotated[
    str, StringConstraints(max_length=6, pattern=r"^[A-Za-z]{2}-[A-Za-z0-9]{1,3}$"), ONE_LINE
]
Token = Annotated[str, StringConstraints(max_length=200, pattern=r"^[A-Za-z0-9_.-]+$"), ONE_LINE]


def _exactly_true(value: Any) -> Any:
    # Literal[True] alone takes 1 too (1 == True): JSON's `true` only.
    if value is not True:
        raise ValueError("must be true: the citizen agreed to the privacy notice")
    return value


class SenderIn(BaseModel):
    """The sender's data, the minimum the letters need."""

    model_config = ConfigDict(extra="forbid")

    full_name: FullName
    email: EmailAddress
    locality: Locality
    postal_address: PostalAddress = ""


# --- the citizen flow's JSON API (/api/v1) -----------------------------------------------------


class SubmissionIn(BaseModel):
    """A submission from a partner site: the same checks as the form (422 names the field), and
    strict JSON types (`"consent": "yes"` or `1`, `"deputy_ids": [true]` are refused)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    region_code: RegionCode
    deputy_ids: Annotated[list[int], Field(min_length=1, max_length=300)]
    full_name: FullName
    email: EmailAddress
    locality: Locality
    postal_address: PostalAddress = ""
    consent: Annotated[Literal[True], BeforeValidator(_exactly_true)] = Field(
        description="The citizen agreed to the privacy notice: `true` only."
    )
    reply_to: bool = Field(False, description="Deputies may reply to the citizen's address.")
    language: Literal["ru", "en"] | None = Field(
        None, description="The e-mail's language; default: from Accept-Language."
    )
    altcha: Annotated[str, StringConstraints(max_length=4000), ONE_LINE] | None = Field(
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
    model_config = ConfigDict(extra="forbid", strict=True)

    token: Token


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
    model_config = ConfigDict(extra="forbid", strict=True)

    letter_ids: Annotated[list[int], Field(max_length=300)] | None = Field(
        None, description="The letters to cancel; none given: every letter not yet sent."
    )


class OpenCampaignOut(BaseModel):
    slug: str
    title: str
    description: str
    requires_address: bool
