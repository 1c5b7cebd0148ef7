"""The audit log: an entry for every staff action (and failed logins on real accounts)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.staff.models import AuditEntry, StaffMember


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
