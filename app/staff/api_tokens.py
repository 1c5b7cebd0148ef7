"""API tokens: bearer tokens for scripts, each acting as its staff member.

The clear token (`apl_…`) is shown once when made; the database keeps only its SHA-256.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import InvalidInput, NotFound
from app.staff.audit_log import record
from app.staff.models import ApiToken, StaffMember
from app.staff.sessions import digest

API_TOKEN_PREFIX = "apl_"


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


async def staff_for_api_token(session: AsyncSession, *, raw: str) -> StaffMember | None:
    """The active member a valid, unrevoked, unexpired bearer token acts for, if any."""
    if not raw.startswith(API_TOKEN_PREFIX) or len(raw) > 100:
        return None
    token = await session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(raw)))
    now = utcnow()
    if (
        token is None
        or token.revoked_at is not None
        or (token.expires_at and token.expires_at <= now)
    ):
        return None
    staff = await session.get(StaffMember, token.staff_id)
    if staff is None or not staff.is_active:
        return None
    token.last_used_at = now
    return staff
