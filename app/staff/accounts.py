"""Staff accounts and their roles: look-ups, creation, changes by an admin, passwords."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.staff.audit_log import record
from app.staff.models import Role, StaffMember, StaffSession
from app.staff.passwords import check_password_policy, hash_password


def normalise_email(email: str) -> str:
    return email.strip().lower()


def require(staff: StaffMember, *roles: Role) -> None:
    """Forbidden unless the member holds one of these roles."""
    if not staff.has_any(*roles):
        names = " or ".join(sorted(roles))
        raise Forbidden("This needs the role {roles}.", roles=names)


def _staff_state(staff: StaffMember) -> dict[str, Any]:
    return {
        "email": staff.email,
        "name": staff.name,
        "roles": sorted(staff.roles),
        "is_active": staff.is_active,
        "totp_enabled": staff.totp_enabled,
    }


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
