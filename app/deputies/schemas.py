"""Shapes of deputies data: rows of the import files and the JSON read API."""

from __future__ import annotations

import re
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.deputies.models import Gender, LegislatureLevel

CODE_PATTERN = r"^[A-Za-z0-9_.:-]+$"
REGION_CODE_PATTERN = r"^[A-Z]{2}-[A-Z0-9]{1,3}$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters or line breaks")
    return value


# A strict subset of the addresses email-validator accepts unchanged: plain lower-case ASCII, no
# IDNA labels, no special-use top-level domain. Checked by the fast path below, it saves about
# 40 µs a row on large imports; anything else goes through email-validator itself.
_PLAIN_EMAIL = re.compile(
    r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)
_SPECIAL_USE_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "home", "lan"})


def _valid_email(value: str) -> str:
    local, _, domain = value.partition("@")
    if (
        _PLAIN_EMAIL.fullmatch(value)
        and len(value) <= 254
        and len(local) <= 64
        and "--" not in domain
        and domain.rsplit(".", 1)[-1] not in _SPECIAL_USE_TLDS
    ):
        return value
    try:
        # No DNS: the importer must work offline. Reserved test domains are allowed for samples.
        result = validate_email(value, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return result.normalized


Text = Annotated[
    str, StringConstraints(strip_whitespace=True), AfterValidator(_no_control_characters)
]
Code = Annotated[Text, StringConstraints(min_length=1, max_length=64, pattern=CODE_PATTERN)]
RegionCode = Annotated[
    Text, StringConstraints(to_upper=True, min_length=4, max_length=6, pattern=REGION_CODE_PATTERN)
]
Name = Annotated[Text, StringConstraints(min_length=1, max_length=300)]


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
    surname: Annotated[Text, StringConstraints(min_length=1, max_length=100)]
    first_name: Annotated[Text, StringConstraints(min_length=1, max_length=100)]
    patronymic: Annotated[Text, StringConstraints(max_length=100)] = ""
    gender: Gender | None = None
    position: Annotated[Text, StringConstraints(min_length=1, max_length=200)]
    party: Annotated[Text, StringConstraints(max_length=200)] = ""
    constituency: Annotated[Text, StringConstraints(max_length=200)] = ""
    email: Annotated[Text, StringConstraints(max_length=254), AfterValidator(_valid_email)]
    reception_address: Annotated[Text, StringConstraints(max_length=500)] | None = None


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
