"""Two-factor authentication by TOTP: enrolment, confirmation, switching off, checking a code.

A code is accepted in its 30-second step or one step either side, and never twice: the last
accepted step is kept on the account, so a replayed (or an older) code is refused.
"""

from __future__ import annotations

import hmac
import time

import pyotp
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, InvalidInput
from app.staff.audit_log import record
from app.staff.models import StaffMember

TOTP_ISSUER = "appeals"


def _totp_step(staff: StaffMember, code: str) -> int | None:
    """The time step a code belongs to (now or one step either side), if it matches."""
    if not staff.totp_secret or not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(staff.totp_secret)
    now = int(time.time())
    for offset in (0, -1, 1):
        at = now + offset * totp.interval
        if hmac.compare_digest(totp.at(at).encode(), code.encode("utf-8", "replace")):
            return at // totp.interval
    return None


def accept_totp(staff: StaffMember, code: str) -> bool:
    """Whether the code is right and new; if so its step is kept (the caller flushes)."""
    step = _totp_step(staff, code.strip())
    # A code already used (or an older one) is refused: a replayed code is worthless.
    if step is None or step <= staff.totp_last_step:
        return False
    staff.totp_last_step = step
    return True


async def begin_totp(session: AsyncSession, *, staff: StaffMember) -> str:
    """Start TOTP enrolment: a new secret, enforced only once a code confirms it."""
    if staff.totp_enabled:
        raise Conflict("Two-factor authentication is already on.")
    staff.totp_secret = pyotp.random_base32()
    await session.flush()
    await record(
        session, actor=staff, action="staff.totp_enrol", object_type="staff", object_id=staff.id
    )
    return staff.totp_secret


def totp_uri(staff: StaffMember) -> str:
    """The otpauth:// URI an authenticator app reads (to be typed or shown, never fetched)."""
    if not staff.totp_secret:
        raise Conflict("Start enrolment first.")
    return pyotp.TOTP(staff.totp_secret).provisioning_uri(name=staff.email, issuer_name=TOTP_ISSUER)


async def confirm_totp(session: AsyncSession, *, staff: StaffMember, code: str) -> None:
    """Turn TOTP on once a code from the new secret is right."""
    if staff.totp_enabled or not staff.totp_secret:
        raise Conflict("There is no two-factor enrolment to confirm.")
    if not accept_totp(staff, code):
        raise InvalidInput("The code is wrong or expired.", field="code")
    staff.totp_enabled = True
    await session.flush()
    await record(
        session, actor=staff, action="staff.totp_on", object_type="staff", object_id=staff.id
    )


async def disable_totp(session: AsyncSession, *, staff: StaffMember, code: str) -> None:
    """Turn TOTP off, given a current code."""
    if not staff.totp_enabled:
        raise Conflict("Two-factor authentication is off.")
    if not accept_totp(staff, code):
        raise InvalidInput("The code is wrong or expired.", field="code")
    staff.totp_enabled = False
    staff.totp_secret = None
    await session.flush()
    await record(
        session, actor=staff, action="staff.totp_off", object_type="staff", object_id=staff.id
    )
