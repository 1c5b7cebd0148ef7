"""Statistics filters and answers. Every figure is a count: no schema here carries a sender."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError, model_validator

from app.errors import InvalidInput
from app.letters.models import LetterStatus
from app.text import ONE_LINE

# Column order of every table and export: the statuses in the order a letter meets them.
STATUSES: tuple[str, ...] = tuple(
    str(s)
    for s in (
        LetterStatus.queued,
        LetterStatus.sending,
        LetterStatus.sent,
        LetterStatus.deferred,
        LetterStatus.failed,
        LetterStatus.cancelled,
        LetterStatus.held,
    )
)


class ExportFormat(StrEnum):
    csv = "csv"
    xlsx = "xlsx"
    json = "json"


class StatsFilter(BaseModel):
    """What to count: one campaign (slug), one region (ISO code), UTC days of creation from
    `since` to `until`, both included. Empty means all."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    campaign: Annotated[str, StringConstraints(max_length=80), ONE_LINE] | None = None
    region: Annotated[str, StringConstraints(max_length=16), ONE_LINE] | None = None
    since: dt.date | None = None
    until: dt.date | None = None

    @model_validator(mode="after")
    def _dates_in_order(self) -> StatsFilter:
        if self.since and self.until and self.since > self.until:
            raise ValueError(f"the start date {self.since} is after the end date {self.until}")
        self.campaign = self.campaign or None
        self.region = self.region.upper() if self.region else None
        return self


def parse_filter(
    campaign: str | None = None,
    region: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> StatsFilter:
    """The filter from query or command-line values; InvalidInput with a readable message."""
    values = {"campaign": campaign, "region": region, "since": since, "until": until}
    try:
        return StatsFilter.model_validate({k: v or None for k, v in values.items()})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        if field in ("since", "until"):
            message = f"{field}: expected a date as YYYY-MM-DD."
        else:
            message = str(first["msg"]).removeprefix("Value error, ")
            message = message[:1].upper() + message[1:] + "."
        raise InvalidInput(message, field=field) from None


class PublicTotalOut(BaseModel):
    letters_sent: int
    campaign: str | None = None


class CountsOut(BaseModel):
    """Letters by status, their total, and for campaigns the distinct senders."""

    key: str
    label: str
    counts: dict[str, int]
    total: int
    senders: int | None = None


class SummaryOut(BaseModel):
    filter: StatsFilter
    totals: dict[str, int]
    total: int
    by_campaign: list[CountsOut]
    by_region: list[CountsOut]
    by_legislature: list[CountsOut]
    by_day: list[CountsOut]
    by_domain: list[CountsOut]
    top_deputies: list[CountsOut]
