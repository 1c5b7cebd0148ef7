"""Shapes of campaigns, texts and versions: what staff submit and what the API returns."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from app.campaigns.models import CampaignStatus, VersionStatus
from app.campaigns.rendering import BODY_MAX, SUBJECT_MAX
from app.deputies.models import LegislatureLevel

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    # U+FFFD is what undecodable bytes become: the input was not valid UTF-8.
    if "\ufffd" in value:
        raise ValueError("must be valid UTF-8 text")
    return value


def _one_line(value: str) -> str:
    if re.search(r"[\r\n\u2028\u2029]", value):
        raise ValueError("must be a single line")
    return value


Line = Annotated[
    str,
    StringConstraints(strip_whitespace=True),
    AfterValidator(_no_control),
    AfterValidator(_one_line),
]
Title = Annotated[Line, StringConstraints(min_length=1, max_length=200)]
Slug = Annotated[str, StringConstraints(min_length=1, max_length=80, pattern=SLUG_PATTERN)]
Description = Annotated[str, StringConstraints(max_length=10_000), AfterValidator(_no_control)]
# Subject and body are checked as templates by the service, which reports lines; only the sizes
# are bounded here so that nothing huge is parsed.
Subject = Annotated[str, StringConstraints(max_length=SUBJECT_MAX), AfterValidator(_no_control)]
Body = Annotated[str, StringConstraints(max_length=BODY_MAX), AfterValidator(_no_control)]
Comment = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=5000), AfterValidator(_no_control)
]


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: Slug
    title: Title
    description: Description = ""
    all_regions: bool = True
    region_codes: list[Annotated[str, StringConstraints(max_length=6)]] = Field(
        default_factory=list, max_length=200
    )
    legislature_level: LegislatureLevel = LegislatureLevel.regional
    requires_address: bool = False
    opens_at: dt.datetime | None = None
    closes_at: dt.datetime | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for name in ("opens_at", "closes_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                setattr(self, name, value.replace(tzinfo=dt.UTC))
        if self.opens_at and self.closes_at and self.closes_at <= self.opens_at:
            raise ValueError("closes_at must be after opens_at")
        if not self.all_regions and not self.region_codes:
            raise ValueError("choose at least one region, or all regions")
        self.region_codes = sorted({code.strip().upper() for code in self.region_codes})
        return self


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: CampaignStatus


class TextIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Title
    subject: Subject
    body: Body


class VersionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: Subject
    body: Body


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: Comment = ""


class VersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    text_id: int
    campaign_id: int
    number: int
    subject: str
    body: str
    status: VersionStatus
    author_id: int
    created_at: dt.datetime
    submitted_at: dt.datetime | None
    reviewed_by_id: int | None
    reviewed_at: dt.datetime | None
    review_comment: str
    withdrawn_by_id: int | None
    withdrawn_at: dt.datetime | None
    withdrawal_comment: str


class TextOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    campaign_id: int
    name: str
    versions: list[VersionOut]


class CampaignOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    title: str
    description: str
    status: CampaignStatus
    all_regions: bool
    region_codes: list[str]
    legislature_level: LegislatureLevel
    requires_address: bool
    opens_at: dt.datetime | None
    closes_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class CampaignDetailOut(CampaignOut):
    texts: list[TextOut]


class PreviewOut(BaseModel):
    version_id: int
    deputy_id: int
    subject: str
    body: str


class DiffOut(BaseModel):
    text_id: int
    from_number: int
    to_number: int
    lines: list[str]


class HeldLettersOut(BaseModel):
    version_id: int
    decision: str
    letters: int
