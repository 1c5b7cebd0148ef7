"""Signing in and out: checking credentials (password, then TOTP), login sessions, CSRF tokens.

Sessions are stored server-side (table staff_session): the cookie holds a random 256-bit token and
the database only its SHA-256, so a session can be ended for real (logout, deactivation, role
change by an admin) and a leaked database does not yield usable cookies. The CSRF token is an HMAC
of the session token under Settings.effective_secret_key: tied to the session, nothing to store.
Looking a session up only reads: it keeps no last-seen time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import utcnow
from app.errors import Unauthorized
from app.staff.accounts import get_staff_by_email
from app.staff.audit_log import record
from app.staff.models import StaffMember, StaffSession
from app.staff.passwords import (
    PASSWORD_MAX,
    hash_password,
    hasher,
    verify_nothing,
    verify_password,
)
from app.staff.throttle import LoginThrottle
from app.staff.totp import accept_totp


def digest(token: str) -> str:
    """What the database keeps of a session's or an API token's secret: its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token_for(session_token: str, *, settings: Settings) -> str:
    """The CSRF token of a session: an HMAC of its token, so nothing needs storing."""
    key = settings.effective_secret_key.encode()
    return hmac.new(key, b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


def csrf_valid(session_token: str, candidate: str | None, *, settings: Settings) -> bool:
    if not candidate:
        return False
    # As bytes: compare_digest refuses str with characters beyond ASCII (a header may hold any).
    expected = csrf_token_for(session_token, settings=settings).encode()
    return hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))


async def authenticate(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    totp_code: str = "",
    client_address: str,
    throttle: LoginThrottle,
    settings: Settings,
) -> StaffMember:
    """The active staff member these credentials belong to; Unauthorized (throttled) otherwise."""
    await throttle.check(email=email, address=client_address)
    staff = (
        await get_staff_by_email(session, email=email) if len(password) <= PASSWORD_MAX else None
    )
    if staff is None:
        # Spend the same time as for a real account: timing must not reveal which addresses exist.
        await verify_nothing(password, settings=settings)
        ok = False
    else:
        ok = await verify_password(staff.password_hash, password, settings=settings)
        reason = "password" if not ok else "inactive" if not staff.is_active else ""
        if not reason and staff.totp_enabled and not accept_totp(staff, totp_code):
            reason = "code"
        if reason:
            # Attempts on a real account are audited (the caller commits even on failure);
            # addresses typed for no account are not kept.
            await record(
                session,
                actor=None,
                actor_label="failed login",
                action="staff.login_failed",
                object_type="staff",
                object_id=staff.id,
                after={"reason": reason},
            )
            ok = False
    if not ok or staff is None:
        await throttle.failed(email=email, address=client_address)
        raise Unauthorized("Wrong e-mail address, password or code.", field="email")
    if hasher(settings).check_needs_rehash(staff.password_hash):
        staff.password_hash = await hash_password(password, settings=settings)
    staff.last_login_at = utcnow()
    await session.flush()
    return staff


async def start_session(session: AsyncSession, *, staff: StaffMember, settings: Settings) -> str:
    """A new login session for this member; returns the token for the cookie."""
    token = secrets.token_urlsafe(32)
    session.add(
        StaffSession(
            token_hash=digest(token),
            staff_id=staff.id,
            expires_at=utcnow() + dt.timedelta(hours=settings.staff_session_hours),
        )
    )
    await session.flush()
    await record(
        session, actor=staff, action="staff.login", object_type="staff", object_id=staff.id
    )
    return token


async def staff_for_session(session: AsyncSession, *, token: str) -> StaffMember | None:
    """The active member whose unexpired session this token opens, if any."""
    if not token or len(token) > 100:
        return None
    row = await session.execute(
        select(StaffMember)
        .join(StaffSession, StaffSession.staff_id == StaffMember.id)
        .where(StaffSession.token_hash == digest(token), StaffSession.expires_at > utcnow())
    )
    staff = row.scalar_one_or_none()
    return staff if staff is not None and staff.is_active else None


async def end_session(session: AsyncSession, *, token: str, staff: StaffMember) -> None:
    """Log out: the session's token stops working at once."""
    await session.execute(delete(StaffSession).where(StaffSession.token_hash == digest(token)))
    # Expired sessions of anyone are of no use: sweep them here rather than in a separate job.
    await session.execute(delete(StaffSession).where(StaffSession.expires_at <= utcnow()))
    await record(
        session, actor=staff, action="staff.logout", object_type="staff", object_id=staff.id
    )
