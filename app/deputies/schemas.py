"""Shapes of deputies data: rows of the import files and the JSON read API."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.deputies.models import Gender, LegislatureLevel
from app.text import FOLDED_LINE, ONE_LINE, EmailAddress, empty_or_with_letters, has_a_letter

CODE_PATTERN = r"^[A-Za-z0-9_.:-]+$"
REGION_CODE_PATTERN = r"^[A-Z]{2}-[A-Z0-9]{1,3}$"


# Every cell passes app.text's gate (one line, no control, format or filler characters, NFC,
# stripped), then its lengths and patterns, on the cleaned text.
Code = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=CODE_PATTERN), ONE_LINE
]
RegionCode = Annotated[
    str,
    StringConstraints(to_upper=True, min_length=4, max_length=6, pattern=REGION_CODE_PATTERN),
    ONE_LINE,
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=300), ONE_LINE]
# A deputy's names, as a careful registrar takes a person's: white space folded, with letters.
NamePart = Annotated[
    str, StringConstraints(min_length=1, max_length=100), FOLDED_LINE, AfterValidator(has_a_letter)
]
Patronymic = Annotated[
    str, StringConstraints(max_length=100), FOLDED_LINE, AfterValidator(empty_or_with_letters)
]


def _line(max_length: int, min_length: int = 0) -> StringConstraints:
    return StringConstraints(min_length=min_length, max_length=max_length)


class LegislatureRow(BaseModel):
    """One row of legislatures.csv: a legislature and the region it belongs to."""

    model_config = ConfigDict(extra="forbid")

    region_code: RegionCode
    region_name_ru: Name
    region_name_en: Name
    legislature_code: Code
    level: LegislatureLevel
    legislature_name_ru: Name
    legislature_name_en: Name


class DeputyRow(BaseModel):
    """One row of deputies.csv."""

    model_config = ConfigDict(extra="forbid")

    external_id: Code
    region_code: RegionCode
    legislature_code: Code
    surname: NamePart
    first_name: NamePart
    patronymic: Patronymic = ""
    gender: Gender | None = None
    position: Annotated[str, _line(200, min_length=1), ONE_LINE]
    party: Annotated[str, _line(200), ONE_LINE] = ""
    constituency: Annotated[str, _line(200), ONE_LINE] = ""
    email: EmailAddress
    reception_address: Annotated[str, _line(500), ONE_LINE] | None = None


class LegislatureOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    level: LegislatureLevel
    name_ru: str
    name_en: str


class RegionOut(BaseModel):
    code: str
    name_ru: str
    name_en: str
    active_deputies: int = Field(description="Number of active deputies in all its legislatures")
    legislatures: list[LegislatureOut]


class RegionRef(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name_ru: str
    name_en: str


class DeputyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    external_id: str
    surname: str
    first_name: str
    patronymic: str
    full_name: str
    gender: Gender | None
    position: str
    party: str
    constituency: str
    email: str
    reception_address: str | None
    is_active: bool
    legislature: LegislatureOut
    region: RegionRef
