"""Staff accounts, logins, sessions, API tokens, TOTP and the audit log.

Sessions are stored server-side (table staff_session): the cookie holds a random 256-bit token and
the database only its SHA-256, so a session can be ended for real (logout, deactivation, role
change by an admin) and a leaked database does not yield usable cookies. The CSRF token is an HMAC
of the session token under Settings.effective_secret_key: tied to the session, nothing to store.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import utcnow
from app.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from app.staff.models import ApiToken, AuditEntry, Role, StaffMember, StaffSession
from app.staff.throttle import LoginThrottle

PASSWORD_MIN = 12
# Argon2 hashes whatever it is given: bound the work an attacker can ask for.
PASSWORD_MAX = 1024
API_TOKEN_PREFIX = "apl_"
TOTP_ISSUER = "appeals"


# --- passwords ---------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _hasher(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)


def hasher(settings: Settings) -> PasswordHasher:
    return _hasher(
        settings.password_time_cost, settings.password_memory_kib, settings.password_parallelism
    )


def check_password_policy(password: str) -> None:
    """Refuse passwords that are too short or absurdly long."""
    if len(password) < PASSWORD_MIN:
        raise InvalidInput(
            "The password needs at least {count} characters.", field="password", count=PASSWORD_MIN
        )
    if len(password) > PASSWORD_MAX:
        raise InvalidInput(
            "The password may have at most {count} characters.",
            field="password",
            count=PASSWORD_MAX,
        )


async def hash_password(password: str, *, settings: Settings) -> str:
    """An Argon2id hash, computed off the event loop."""
    return await asyncio.to_thread(hasher(settings).hash, password)


async def _verify_password(password_hash: str, password: str, *, settings: Settings) -> bool:
    def verify() -> bool:
        try:
            return hasher(settings).verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


@lru_cache(maxsize=8)
def _dummy_hash(time_cost: int, memory_kib: int, parallelism: int) -> str:
    return _hasher(time_cost, memory_kib, parallelism).hash("not a password of anyone")


# --- tokens ------------------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token_for(session_token: str, *, settings: Settings) -> str:
    """The CSRF token of a session: an HMAC of its token, so nothing needs storing."""
    key = settings.effective_secret_key.encode()
    return hmac.new(key, b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


def csrf_valid(session_token: str, candidate: str | None, *, settings: Settings) -> bool:
    if not candidate:
        return False
    return hmac.compare_digest(csrf_token_for(session_token, settings=settings), candidate)


# --- audit log ---------------------------------------------------------------------------------


async def record(
    session: AsyncSession,
    *,
    actor: StaffMember | None,
    action: str,
    object_type: str,
    object_id: object = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor_label: str = "command line",
) -> AuditEntry:
    """Add an audit entry for a staff action (actor None: `actor_label`, the command line)."""
    entry = AuditEntry(
        staff_id=actor.id if actor else None,
        actor=actor.email if actor else actor_label,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=before,
        after=after,
    )
    session.add(entry)
    await session.flush()
    return entry


async def list_audit(
    session: AsyncSession, *, limit: int = 100, offset: int = 0
) -> tuple[list[AuditEntry], int]:
    """The newest audit entries first, and how many there are in all."""
    total = await session.scalar(select(func.count(AuditEntry.id)))
    entries = await session.scalars(
        select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).offset(offset)
    )
    return list(entries), total or 0


def _staff_state(staff: StaffMember) -> dict[str, Any]:
    return {
        "email": staff.email,
        "name": staff.name,
        "roles": sorted(staff.roles),
        "is_active": staff.is_active,
        "totp_enabled": staff.totp_enabled,
    }


# --- accounts ----------------------------------------------------------------------------------


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def get_staff(session: AsyncSession, *, staff_id: int) -> StaffMember:
    """One staff member; NotFound otherwise."""
    staff = await session.get(StaffMember, staff_id)
    if staff is None:
        raise NotFound("No staff member with id {id}.", field="staff_id", id=staff_id)
    return staff


async def get_staff_by_email(session: AsyncSession, *, email: str) -> StaffMember | None:
    """The staff member with this e-mail address, if any."""
    return await session.scalar(
        select(StaffMember).where(StaffMember.email == normalise_email(email))
    )


async def list_staff(session: AsyncSession) -> Sequence[StaffMember]:
    """Every staff member, by e-mail address."""
    return (await session.scalars(select(StaffMember).order_by(StaffMember.email))).all()


async def create_staff(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    roles: set[Role],
    name: str = "",
    settings: Settings,
    actor: StaffMember | None,
) -> StaffMember:
    """A new staff member; Conflict if the address is taken."""
    check_password_policy(password)
    if not roles:
        raise InvalidInput("Give the staff member at least one role.", field="roles")
    email = normalise_email(email)
    if await get_staff_by_email(session, email=email) is not None:
        raise Conflict(
            "A staff member with the address {email} exists.", field="email", email=email
        )
    staff = StaffMember(
        email=email,
        name=name.strip(),
        password_hash=await hash_password(password, settings=settings),
    )
    staff.roles = roles
    session.add(staff)
    try:
        await session.flush()
    except IntegrityError:  # the same address, created at the same moment
        raise Conflict(
            "A staff member with the address {email} exists.", field="email", email=email
        ) from None
    await record(
        session,
        actor=actor,
        action="staff.create",
        object_type="staff",
        object_id=staff.id,
        after=_staff_state(staff),
    )
    return staff


async def update_staff(
    session: AsyncSession,
    *,
    staff_id: int,
    roles: set[Role] | None = None,
    is_active: bool | None = None,
    name: str | None = None,
    actor: StaffMember,
) -> StaffMember:
    """Change a member's roles, name or active flag; changed access ends their sessions."""
    staff = await get_staff(session, staff_id=staff_id)
    before = _staff_state(staff)
    if staff.id == actor.id and (
        is_active is False or (roles is not None and Role.admin not in roles)
    ):
        raise Conflict("You cannot deactivate yourself or remove your own admin role.")
    if roles is not None:
        if not roles:
            raise InvalidInput("Give the staff member at least one role.", field="roles")
        staff.roles = roles
    if is_active is not None:
        staff.is_active = is_active
    if name is not None:
        staff.name = name.strip()
    after = _staff_state(staff)
    if after == before:
        return staff
    if after["roles"] != before["roles"] or after["is_active"] != before["is_active"]:
        await session.execute(delete(StaffSession).where(StaffSession.staff_id == staff.id))
    await session.flush()
    await record(
        session,
        actor=actor,
        action="staff.update",
        object_type="staff",
        object_id=staff.id,
        before=before,
        after=after,
    )
    return staff


async def set_password(
    session: AsyncSession,
    *,
    staff: StaffMember,
    password: str,
    settings: Settings,
    actor: StaffMember | None,
) -> None:
    """Replace a member's password and end all their sessions."""
    check_password_policy(password)
    staff.password_hash = await hash_password(password, settings=settings)
    await session.execute(delete(StaffSession).where(StaffSession.staff_id == staff.id))
    await session.flush()
    await record(
        session, actor=actor, action="staff.password", object_type="staff", object_id=staff.id
    )


# --- TOTP --------------------------------------------------------------------------------------


def _totp_step(staff: StaffMember, code: str) -> int | None:
    """The time step a code belongs to (now or one step either side), if it matches."""
    if not staff.totp_secret or not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(staff.totp_secret)
    now = int(time.time())
    for offset in (0, -1, 1):
        at = now + offset * totp.interval
        if hmac.compare_digest(totp.at(at), code):
            return at // totp.interval
    return None


def _accept_totp(staff: StaffMember, code: str) -> bool:
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
    if not _accept_totp(staff, code):
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
    if not _accept_totp(staff, code):
        raise InvalidInput("The code is wrong or expired.", field="code")
    staff.totp_enabled = False
    staff.totp_secret = None
    await session.flush()
    await record(
        session, actor=staff, action="staff.totp_off", object_type="staff", object_id=staff.id
    )


# --- login and sessions ------------------------------------------------------------------------


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
        await _verify_password(
            _dummy_hash(
                settings.password_time_cost,
                settings.password_memory_kib,
                settings.password_parallelism,
            ),
            password[:PASSWORD_MAX],
            settings=settings,
        )
        ok = False
    else:
        ok = await _verify_password(staff.password_hash, password, settings=settings)
        reason = "password" if not ok else "inactive" if not staff.is_active else ""
        if not reason and staff.totp_enabled and not _accept_totp(staff, totp_code):
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
            token_hash=_digest(token),
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
        .where(StaffSession.token_hash == _digest(token), StaffSession.expires_at > utcnow())
    )
    staff = row.scalar_one_or_none()
    return staff if staff is not None and staff.is_active else None


async def end_session(session: AsyncSession, *, token: str, staff: StaffMember) -> None:
    """Log out: the session's token stops working at once."""
    await session.execute(delete(StaffSession).where(StaffSession.token_hash == _digest(token)))
    # Expired sessions of anyone are of no use: sweep them here rather than in a separate job.
    await session.execute(delete(StaffSession).where(StaffSession.expires_at <= utcnow()))
    await record(
        session, actor=staff, action="staff.logout", object_type="staff", object_id=staff.id
    )


# --- API tokens --------------------------------------------------------------------------------


async def create_api_token(
    session: AsyncSession, *, staff: StaffMember, name: str, days: int | None = None
) -> tuple[ApiToken, str]:
    """A new bearer token for scripts; the clear token is returned once and never stored."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("Name the token (1 to 100 characters).", field="name")
    raw = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        token_hash=_digest(raw),
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
    token = await session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(raw)))
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


def require(staff: StaffMember, *roles: Role) -> None:
    """Forbidden unless the member holds one of these roles."""
    if not staff.has_any(*roles):
        names = " or ".join(sorted(roles))
        raise Forbidden("This needs the role {roles}.", roles=names)
