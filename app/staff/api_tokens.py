"""API tokens: bearer tokens for scripts, each acting as its staff member.

The clear token (`apl_…`) is shown once when made; the database keeps only its SHA-256. A
token's last use is kept to the minute (LAST_USE_EVERY), written by a write of its own
(app.staff.web decides which, the request's or a separate one).
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Sequence

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import InvalidInput, NotFound
from app.staff.audit_log import record
from app.staff.models import ApiToken, StaffMember
from app.staff.sessions import digest

API_TOKEN_PREFIX = "apl_"
# A token's last use is bookkeeping, to the minute: written at most once a minute, and never by
# a read's own session (a write there took SQLite's lock inside GETs, which then failed).
LAST_USE_EVERY = dt.timedelta(minutes=1)
# When this process began to note a use of each token lately (time.monotonic), by digest.
_noted: dict[str, float] = {}
_NOTED_MAX = 1024  # beyond this, entries older than a minute are dropped


async def create_api_token(
    session: AsyncSession, *, staff: StaffMember, name: str, days: int | None = None
) -> tuple[ApiToken, str]:
    """A new bearer token for scripts; the clear token is returned once and never stored."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("Name the token (1 to 100 characters).", field="name")
    raw = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        token_hash=digest(raw),
        staff_id=staff.id,
        name=name,
        expires_at=utcnow() + dt.timedelta(days=days) if days else None,
    )
    session.add(token)
    await session.flush()
    await record(
        session,
        actor=staff,
        action="api_token.create",
        object_type="api_token",
        object_id=token.id,
        after={"name": name, "expires_at": str(token.expires_at)},
    )
    return token, raw


async def list_api_tokens(session: AsyncSession, *, staff: StaffMember) -> Sequence[ApiToken]:
    """The member's tokens, newest first."""
    return (
        await session.scalars(
            select(ApiToken).where(ApiToken.staff_id == staff.id).order_by(ApiToken.id.desc())
        )
    ).all()


async def revoke_api_token(session: AsyncSession, *, staff: StaffMember, token_id: int) -> None:
    """Revoke one of the member's own tokens."""
    token = await session.get(ApiToken, token_id)
    if token is None or token.staff_id != staff.id:
        raise NotFound("No such token.", field="token_id")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        await session.flush()
        await record(
            session,
            actor=staff,
            action="api_token.revoke",
            object_type="api_token",
            object_id=token.id,
        )


async def find_api_token(session: AsyncSession, *, raw: str) -> tuple[ApiToken, StaffMember] | None:
    """A valid, unrevoked, unexpired bearer token and the active member it acts for, if any.
    Only reads: its last use is noted apart (last_use_due, note_use)."""
    if not raw.startswith(API_TOKEN_PREFIX) or len(raw) > 100:
        return None
    token = await session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(raw)))
    if (
        token is None
        or token.revoked_at is not None
        or (token.expires_at and token.expires_at <= utcnow())
    ):
        return None
    staff = await session.get(StaffMember, token.staff_id)
    if staff is None or not staff.is_active:
        return None
    return token, staff


def last_use_due(token: ApiToken, *, now: dt.datetime) -> bool:
    """Whether this use of the token is to be written down: its last use written is a minute old
    (or none), and this process has not begun to note one within the minute. True at most once
    a minute for each token in a process, so that a burst of requests makes one write."""
    if token.last_used_at is not None and now - token.last_used_at < LAST_USE_EVERY:
        return False
    clock = time.monotonic()
    every = LAST_USE_EVERY.total_seconds()
    noted = _noted.get(token.token_hash)
    if noted is not None and clock - noted < every:
        return False
    if len(_noted) >= _NOTED_MAX:
        for key in [k for k, at in _noted.items() if clock - at >= every]:
            del _noted[key]
    _noted[token.token_hash] = clock
    return True


async def note_use(session: AsyncSession, *, token_id: int, at: dt.datetime) -> None:
    """Write the token's last use, in the session's write transaction, unless one within the
    minute is there already (another process's). An UPDATE of its own, not a change to a loaded
    token, which a later query's autoflush would write wherever it ran."""
    await session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= at - LAST_USE_EVERY),
        )
        .values(last_used_at=at)
        .execution_options(synchronize_session=False)
    )
