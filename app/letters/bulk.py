"""Letters of one confirmation, made in bulk: one rotation statement and one INSERT for all.

A confirmation makes a letter for each chosen deputy (50 in a large region). Done one by one
through `campaigns_service.choose_version` and `letters_service.create_letter`, that is two
queries, an upsert and a flush per letter (about 6 confirmations a second on SQLite). This module
does the same work with the same building blocks, set-wise: the variant counters of every deputy
move in one upsert (same VersionRotation rows, same rule: the n-th letter to a deputy gets variant
(n - 1) mod k), the messages are built by `delivery.message.build_message` exactly as
create_letter builds them, and the rows go in one executemany INSERT.
tests/letters/test_bulk.py checks that both ways give the same letters.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns import service as campaigns_service
from app.campaigns.models import AppealVersion, VersionRotation, VersionStatus
from app.config import Settings
from app.db import utcnow
from app.delivery import message as delivery_message
from app.deputies.models import Deputy
from app.errors import Conflict
from app.letters.models import Letter, LetterMessage, LetterStatus


async def _advance(
    session: AsyncSession, *, campaign_id: int, deputy_ids: Sequence[int]
) -> dict[int, int]:
    """Count one more letter to each deputy (distinct ids) in one upsert; the new counters."""
    dialect = session.get_bind().dialect.name
    upsert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        upsert(VersionRotation)
        .values([{"campaign_id": campaign_id, "deputy_id": i, "counter": 1} for i in deputy_ids])
        .on_conflict_do_update(
            index_elements=["campaign_id", "deputy_id"],
            set_={"counter": VersionRotation.counter + 1},
        )
        .returning(VersionRotation.deputy_id, VersionRotation.counter)
    )
    return {int(row[0]): int(row[1]) for row in await session.execute(statement)}


async def _current(
    session: AsyncSession, *, campaign_id: int, deputy_ids: Sequence[int]
) -> dict[int, int]:
    rows = await session.execute(
        select(VersionRotation.deputy_id, VersionRotation.counter).where(
            VersionRotation.campaign_id == campaign_id,
            VersionRotation.deputy_id.in_(deputy_ids),
        )
    )
    return {int(row[0]): int(row[1]) for row in rows}


async def _approved(session: AsyncSession, *, campaign_id: int) -> list[AppealVersion]:
    """The approved versions, locked (FOR SHARE on PostgreSQL) until the letters are committed:
    a lawyer's withdrawal (an UPDATE of the version) then waits for this confirmation and holds
    its letters, or, if it came first, this confirmation no longer sees the version. SQLite
    needs no lock: the confirmation holds the database's write lock from its first statement."""
    if session.get_bind().dialect.name != "postgresql":
        versions = await campaigns_service.approved_versions(session, campaign_id=campaign_id)
    else:
        versions = list(
            await session.scalars(
                select(AppealVersion)
                .where(
                    AppealVersion.campaign_id == campaign_id,
                    AppealVersion.status == VersionStatus.approved,
                )
                .order_by(AppealVersion.id)
                .with_for_update(read=True)
            )
        )
    if not versions:
        raise Conflict("This campaign has no approved text at the moment.", field="campaign_id")
    return versions


def _dkim(settings: Settings) -> delivery_message.DkimKey | None:
    if not settings.dkim_configured:
        return None
    return delivery_message.load_dkim_key(
        str(settings.dkim_selector), str(settings.dkim_domain), str(settings.dkim_private_key_path)
    )


YIELD_EVERY = 5  # letters built between two turns of the event loop (about 1 ms)


@dataclass
class Prepared:
    """Letters rendered and built ahead of the write transaction (see prepare_letters)."""

    campaign_id: int
    deputies: list[Deputy]
    versions: list[AppealVersion]
    predicted: dict[int, AppealVersion]
    rows: dict[int, dict[str, Any]]  # by deputy id
    build: Callable[[Deputy, AppealVersion], dict[str, Any]]


async def prepare_letters(
    session: AsyncSession,
    *,
    deputies: Sequence[Deputy],
    campaign_id: int,
    campaign_title: str,
    citizen: Mapping[str, str],
    sender_name: str,
    sender_email: str,
    reply_to: bool,
    sender_key: str,
    date: dt.date,
    settings: Settings,
) -> Prepared:
    """Render and build one letter per deputy (legislature and region loaded) with the variant
    the counters predict; nothing is written. This is the CPU-heavy part (50 texts rendered in
    the sandbox, 50 messages built): done before the write transaction, it holds no lock (the
    whole database on SQLite, the counters' rows on PostgreSQL). insert_letters re-checks."""
    ids = [d.id for d in deputies]
    versions = await _approved(session, campaign_id=campaign_id)
    current = (
        await _current(session, campaign_id=campaign_id, deputy_ids=ids)
        if len(versions) > 1
        else {}
    )
    predicted = {i: versions[current.get(i, 0) % len(versions)] for i in ids}
    sender_email = delivery_message.check_address(sender_email.strip(), field="sender_email")
    sender_name = delivery_message.clean_text(sender_name)
    dkim = _dkim(settings)
    now = utcnow()
    memo: dict[tuple[str, ...], str] = {}  # headers repeated in these letters, encoded once

    def build(deputy: Deputy, version: AppealVersion) -> dict[str, Any]:
        subject, body = campaigns_service.render_letter(
            version, deputy=deputy, citizen=citizen, date=date
        )
        recipient = delivery_message.check_address(deputy.email.strip(), field="deputy.email")
        message_id = delivery_message.new_message_id(settings.mail_from)
        return {
            "campaign_id": campaign_id,
            "appeal_version_id": version.id,
            "deputy_id": deputy.id,
            "recipient_email": recipient,
            "recipient_domain": delivery_message.address_domain(recipient),
            "message_id": message_id,
            "message": delivery_message.build_message(
                mail_from=settings.mail_from,
                sender_name=sender_name,
                sender_email=sender_email if reply_to else None,
                recipient_name=deputy.full_name,
                recipient_email=recipient,
                subject=subject,
                body=body,
                campaign_id=campaign_id,
                campaign_title=campaign_title,
                message_id=message_id,
                date=now,
                dkim=dkim,
                memo=memo,
            ),
            "sender_name": sender_name,
            "sender_email": sender_email,
            "sender_key": sender_key,
            "status": LetterStatus.queued,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }

    rows: dict[int, dict[str, Any]] = {}
    for n, deputy in enumerate(deputies):
        rows[deputy.id] = build(deputy, predicted[deputy.id])
        if n % YIELD_EVERY == YIELD_EVERY - 1:
            # Let the event loop run between letters: another request of this process may hold
            # the database's write lock (SQLite) or the counters' row locks (PostgreSQL) and
            # wait only for its next statement's result to be picked up.
            await asyncio.sleep(0)
    return Prepared(campaign_id, list(deputies), versions, predicted, rows, build)


async def insert_letters(
    session: AsyncSession, prepared: Prepared, *, deputy_ids: Collection[int] | None = None
) -> list[int]:
    """In the write transaction: queue the prepared letters (to those of `deputy_ids`, when
    given); returns their ids in order. The approved versions are read again (and locked on
    PostgreSQL) and the counters moved; a letter whose variant changed in between (a version
    withdrawn or approved, a concurrent confirmation) is built again here."""
    wanted = None if deputy_ids is None else set(deputy_ids)
    deputies = [d for d in prepared.deputies if wanted is None or d.id in wanted]
    if not deputies:
        return []
    ids = [d.id for d in deputies]
    campaign_id = prepared.campaign_id
    versions = await _approved(session, campaign_id=campaign_id)
    counters = await _advance(session, campaign_id=campaign_id, deputy_ids=ids)
    rows = []
    for deputy in deputies:
        version = versions[(counters[deputy.id] - 1) % len(versions)]
        row = prepared.rows[deputy.id]
        if version.id != prepared.predicted[deputy.id].id:
            row = prepared.build(deputy, version)
        rows.append(row)
    # The message bytes go to their own table (see LetterMessage), keyed by the letter's id.
    # (The prepared rows stay whole: a retry after a conflict inserts them again.)
    messages = {row["message_id"]: row["message"] for row in rows}
    rows = [{k: v for k, v in row.items() if k != "message"} for row in rows]
    message_ids = [row["message_id"] for row in rows]
    table = cast(Table, Letter.__table__)
    if session.get_bind().dialect.name == "postgresql":
        # One INSERT … RETURNING for all (insertmanyvalues): one round trip fewer while the
        # counters' rows are locked.
        returned = await session.execute(
            insert(table).returning(table.c.message_id, table.c.id), rows
        )
        found = {str(row[0]): int(row[1]) for row in returned}
    else:
        # A plain executemany (RETURNING with ordered rows falls back to one INSERT per row on
        # SQLite); the ids come back by the unique Message-IDs.
        await session.execute(insert(table), rows)
        found = dict(
            (
                await session.execute(
                    select(Letter.message_id, Letter.id).where(Letter.message_id.in_(message_ids))
                )
            ).all()
        )
    await session.execute(
        insert(cast(Table, LetterMessage.__table__)),
        [{"letter_id": found[mid], "message": data} for mid, data in messages.items()],
    )
    return [found[message_id] for message_id in message_ids]


async def create_letters(
    session: AsyncSession,
    *,
    deputies: Sequence[Deputy],
    campaign_id: int,
    campaign_title: str,
    citizen: Mapping[str, str],
    sender_name: str,
    sender_email: str,
    reply_to: bool,
    sender_key: str,
    date: dt.date,
    settings: Settings,
) -> list[int]:
    """Queue one letter per deputy (legislature and region loaded); returns their ids in order.
    prepare_letters and insert_letters in one go."""
    prepared = await prepare_letters(
        session,
        deputies=deputies,
        campaign_id=campaign_id,
        campaign_title=campaign_title,
        citizen=citizen,
        sender_name=sender_name,
        sender_email=sender_email,
        reply_to=reply_to,
        sender_key=sender_key,
        date=date,
        settings=settings,
    )
    return await insert_letters(session, prepared)
