"""Shapes of staff data in the JSON API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
)

from app.staff.models import Role
from app.text import FOLDED_LINE, ONE_LINE, SECRET, EmailAddress, empty_or_with_letters

# Staff sign in with their address in lower case (app.text's gate and a registrar's rules first).
Email = Annotated[EmailAddress, AfterValidator(str.lower)]
# A display name: empty, or a person's name (white space folded, with letters).
Name = Annotated[
    str, StringConstraints(max_length=200), FOLDED_LINE, AfterValidator(empty_or_with_letters)
]
Password = Annotated[str, StringConstraints(max_length=1024), SECRET]


class StaffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    name: Name = ""
    password: Password
    roles: set[Role] = Field(min_length=1)


class StaffUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    roles: set[Role] | None = None
    is_active: StrictBool | None = None


class StaffOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    roles: Annotated[list[Role], AfterValidator(sorted)]
    is_active: bool
    totp_enabled: bool
    created_at: dt.datetime
    last_login_at: dt.datetime | None


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: dt.datetime
    staff_id: int | None
    actor: str
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditPage(BaseModel):
    total: int
    entries: list[AuditOut]


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=100), ONE_LINE]
    days: StrictInt | None = Field(default=None, ge=1, le=3650)


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None = Field(
        description="The token's last use, to the minute: written at most once a minute"
    )


class TokenCreated(TokenOut):
    token: str = Field(description="Shown once: store it now, it cannot be read again")
