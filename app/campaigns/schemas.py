"""Shapes of campaigns, texts and versions: what staff submit and what the API returns."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)

from app.campaigns.models import CampaignStatus, VersionStatus
from app.campaigns.rendering import BODY_MAX, SUBJECT_MAX
from app.deputies.models import LegislatureLevel
from app.text import MANY_LINES, ONE_LINE

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"

# Every text passes app.text's gate (no NUL, control, format or filler characters, valid UTF-8),
# then its length and pattern.
Title = Annotated[str, StringConstraints(min_length=1, max_length=200), ONE_LINE]
Slug = Annotated[
    str, StringConstraints(min_length=1, max_length=80, pattern=SLUG_PATTERN), ONE_LINE
]
RegionCode = Annotated[str, StringConstraints(max_length=6), ONE_LINE]
Description = Annotated[str, StringConstraints(max_length=10_000), MANY_LINES]
# Subject and body are checked as templates by the service, which reports lines (and that the
# subject is one line, in the page's language); only the sizes are bounded here so that nothing
# huge is parsed.
Subject = Annotated[str, StringConstraints(max_length=SUBJECT_MAX), MANY_LINES]
Body = Annotated[str, StringConstraints(max_length=BODY_MAX), MANY_LINES]
Comment = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000), MANY_LINES]


def _written_out(value: object) -> object:
    # JSON's numbers would be taken as seconds since 1970: a date is written out (ISO 8601).
    if isinstance(value, int | float):
        raise ValueError("must be a date and time written out, e.g. 2026-12-01T09:00:00Z")
    return value


Moment = Annotated[dt.datetime, BeforeValidator(_written_out)]


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: Slug
    title: Title
    description: Description = ""
    all_regions: StrictBool = True
    region_codes: list[RegionCode] = Field(default_factory=list, max_length=200)
    legislature_level: LegislatureLevel = LegislatureLevel.regional
    requires_address: StrictBool = False
    opens_at: Moment | None = None
    closes_at: Moment | None = None

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
        self.region_codes = sorted({code.upper() for code in self.region_codes})
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
