"""Confirming a submission: its letters are made once, from the campaign as it is at that moment.

The work is split in two so that the write transaction (on SQLite the whole database's write
lock, on PostgreSQL the locks of the rows it touches) holds only the writes and their checks:

1. prepare(), before any write: the pending submission is read; the campaign, its approved texts
   and the deputies come from the process's snapshot (cache.IntakeCache); the deputies this
   address already wrote to are skipped; every letter is rendered and built.
2. confirm(), in the write transaction: the campaign must still be open with the same approved
   texts (locked FOR SHARE on PostgreSQL, so that a lawyer's withdrawal waits for the letters and
   then holds them, or came first and is seen here) and the deputies unchanged; if anything
   differs, that transaction ends with nothing written, and in a new one what differs is read
   again from the database and its letters built again. The letters and their messages
   are inserted, and the submission is claimed (pending -> confirmed, so a replayed link finds
   nothing to claim) and stripped of personal data in one UPDATE; if the claim finds nothing,
   the caller rolls everything back. On PostgreSQL the claim and the inserts are one statement
   (_CLAIM_AND_INSERT_POSTGRESQL), which inserts nothing when the claim finds nothing.

Once per deputy is the unique constraint (campaign, sender key, deputy): a concurrent
confirmation from the same address makes the INSERT fail; the caller starts again, and the
second pass skips that deputy. confirm() commits: on SQLite its writes and the COMMIT run in
one trip to the connection's thread (db.run_sync), so the lock is held for no longer.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from sqlalchemy import Row, Select, bindparam, exists, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.campaigns.models import AppealVersion, Campaign, VersionStatus
from app.config import Settings
from app.db import UTCDateTime, begin_write, run_sync, utcnow
from app.deputies.models import Deputy
from app.errors import Conflict, Gone
from app.i18n import gettext as _
from app.letters import bulk, flow, open_campaigns
from app.letters.cache import CampaignTexts, IntakeCache
from app.letters.submissions import Submission, SubmissionStatus


def _expired() -> Gone:
    return Gone(
        _("This confirmation link has expired. Please fill in the form again."), field="token"
    )


def _used() -> flow.LinkUsed:
    return flow.LinkUsed(_("This link has already been used: nothing was changed."), field="token")


_PENDING = select(
    Submission.id,
    Submission.campaign_id,
    Submission.deputy_ids,
    Submission.skipped_deputy_ids,
    Submission.status,
    Submission.expires_at,
    Submission.full_name,
    Submission.email,
    Submission.locality,
    Submission.postal_address,
    Submission.reply_to,
).where(Submission.token_hash == bindparam("token_hash"))

# The approved versions of an open campaign, locked against a withdrawal on PostgreSQL (the
# campaign's row is not locked: a pause only stops delivery, which holds these letters too).
_APPROVED = (
    select(AppealVersion.id, AppealVersion.subject, AppealVersion.body)
    .where(
        AppealVersion.campaign_id == bindparam("campaign_id"),
        AppealVersion.status == VersionStatus.approved,
        exists().where(
            Campaign.id == bindparam("campaign_id"),
            *open_campaigns.open_clause(bindparam("now", type_=UTCDateTime())),
        ),
    )
    .order_by(AppealVersion.id)
)

# pending -> confirmed, once: a replayed link or a concurrent confirmation finds nothing.
_CLAIM = (
    update(Submission)
    .where(
        Submission.id == bindparam("submission_id"),
        Submission.status == SubmissionStatus.pending,
        Submission.expires_at > bindparam("now", type_=UTCDateTime()),
    )
    .values(
        status=SubmissionStatus.confirmed,
        confirmed_at=bindparam("now", type_=UTCDateTime()),
        letter_ids=bindparam("ids", type_=Submission.__table__.c.letter_ids.type),
        skipped_deputy_ids=bindparam(
            "skipped", type_=Submission.__table__.c.skipped_deputy_ids.type
        ),
        # The letters now hold what they need; the submission keeps nothing personal.
        full_name=None,
        email=None,
        locality=None,
        postal_address=None,
    )
    .execution_options(synchronize_session=False)
)

# PostgreSQL: _CLAIM and the letters with their messages in one statement, so that the rows
# the statistics trigger and the unique keys lock are held from the end of the statement to
# COMMIT, with no round trip between (bench/README.md, sixth round; with several approved
# texts the variants' counters are locked one statement earlier, by bulk._advance). The claim
# draws the letters' ids from their sequence and stores them; nothing is inserted when it finds
# nothing.
_CLAIMED_IDS = (
    "SELECT CAST(e.id AS integer), e.n FROM claimed"
    " CROSS JOIN LATERAL json_array_elements_text(claimed.letter_ids) WITH ORDINALITY AS e (id, n)"
)
_CLAIM_AND_INSERT_POSTGRESQL = text(
    f"""
WITH claimed AS (
    UPDATE submission SET
        status = '{SubmissionStatus.confirmed.value}',
        confirmed_at = :now,
        letter_ids = to_json(ARRAY(
            SELECT nextval(pg_get_serial_sequence('letter', 'id'))
            FROM generate_series(1, CAST(:count AS integer))
        )),
        skipped_deputy_ids = CAST(:skipped AS json),
        full_name = NULL, email = NULL, locality = NULL, postal_address = NULL
    WHERE id = :submission_id AND status = '{SubmissionStatus.pending.value}'
        AND expires_at > :now
    RETURNING letter_ids
), {bulk.postgresql_inserts(_CLAIMED_IDS)}
SELECT (SELECT count(*) FROM claimed), ARRAY(SELECT id FROM given ORDER BY n)
"""
)

_DEPUTIES = select(Deputy.id, Deputy.is_active, Deputy.updated_at).where(
    Deputy.id.in_(bindparam("ids", expanding=True))
)


@dataclass
class Confirmed:
    letter_ids: list[int]
    skipped_deputy_ids: list[int]
    # The letters just made (all queued), each with its deputy, and the campaign's title: what
    # the answer shows, without reading them back.
    deputies: list[bulk.DeputyCard]
    campaign_title: str


@dataclass(frozen=True, slots=True)
class PendingSubmission:
    token_hash: str
    id: int
    campaign_id: int
    deputy_ids: list[int]
    skipped_deputy_ids: list[int]
    expires_at: dt.datetime
    reply_to: bool
    # The sender's data: never in a repr (tracebacks, logs).
    full_name: str = field(repr=False)
    email: str = field(repr=False)
    locality: str = field(repr=False)
    postal_address: str = field(repr=False)


@dataclass
class Prepared:
    """A confirmation's letters rendered and built before its write transaction."""

    submission: PendingSubmission
    key: str  # the sender key (flow.sender_key)
    texts: CampaignTexts
    cards: dict[int, bulk.DeputyCard]  # the submission's deputies as they were seen
    written: set[int]  # deputies this address already wrote to in the campaign
    letters: bulk.Prepared


async def pending(session: AsyncSession, *, token: str, settings: Settings) -> PendingSubmission:
    """The pending submission of a confirmation link (Gone, NotFound, LinkUsed otherwise)."""
    token_hash = flow.token_hash(flow.confirm_nonce(token, settings=settings))
    row = (await session.execute(_PENDING, {"token_hash": token_hash})).one_or_none()
    if row is None or row.expires_at <= utcnow():
        raise _expired()
    if row.status != SubmissionStatus.pending:
        raise _used()
    return PendingSubmission(
        token_hash=token_hash,
        id=row.id,
        campaign_id=row.campaign_id,
        deputy_ids=list(row.deputy_ids),
        skipped_deputy_ids=list(row.skipped_deputy_ids),
        expires_at=row.expires_at,
        reply_to=row.reply_to,
        full_name=row.full_name or "",
        email=row.email or "",
        locality=row.locality or "",
        postal_address=row.postal_address or "",
    )


async def _prepare_letters(
    session: AsyncSession,
    submission: PendingSubmission,
    *,
    key: str,
    texts: CampaignTexts,
    cards: dict[int, bulk.DeputyCard],
    written: set[int],
    settings: Settings,
) -> bulk.Prepared:
    """The letters to the submission's active deputies not written to yet, in its order,
    rendered and built (nothing written)."""
    deputies = [
        cards[i]
        for i in submission.deputy_ids
        if i in cards and cards[i].is_active and i not in written
    ]
    campaign = texts.campaign
    builder = bulk.LetterBuilder(
        campaign_id=campaign.id,
        campaign_title=campaign.title,
        citizen=flow.citizen_values(submission, campaign=campaign),
        sender_name=submission.full_name,
        sender_email=submission.email,
        reply_to=submission.reply_to,
        sender_key=key,
        date=utcnow().date(),
        settings=settings,
    )
    return await bulk.prepare_letters(
        session, deputies=deputies, versions=texts.versions, builder=builder
    )


async def prepare(
    session: AsyncSession, *, token: str, settings: Settings, cache: IntakeCache
) -> Prepared:
    """Read the pending submission of a confirmation link and build its letters, writing
    nothing (Gone, NotFound, LinkUsed as the link requires; NotFound or Gone if the campaign is
    not open). confirm() then does the writes, checking again inside its transaction."""
    submission = await pending(session, token=token, settings=settings)
    texts = await cache.campaign_texts(session, campaign_id=submission.campaign_id)
    ids = submission.deputy_ids
    cards = await cache.deputy_cards(session, ids=ids)
    key = flow.sender_key(submission.email, secret=settings.effective_secret_key)
    written = await flow.already_written(
        session, campaign_id=texts.campaign.id, deputy_ids=ids, key=key
    )
    letters = await _prepare_letters(
        session, submission, key=key, texts=texts, cards=cards, written=written,
        settings=settings,
    )  # fmt: skip
    return Prepared(submission, key, texts, cards, written, letters)


def _approved_rows(session: Session, *, campaign_id: int, now: dt.datetime) -> list[Row[Any]]:
    """The campaign's approved versions if it is open, as they are in this transaction."""
    return list(session.execute(_approved(session), {"campaign_id": campaign_id, "now": now}))


async def _texts_now(
    session: AsyncSession, *, texts: CampaignTexts, cache: IntakeCache, now: dt.datetime
) -> CampaignTexts:
    """The campaign's approved texts as they are in this transaction (locked on PostgreSQL);
    NotFound, Gone or Conflict if it is no longer open."""
    campaign_id = texts.campaign.id
    rows = await session.run_sync(partial(_approved_rows, campaign_id=campaign_id, now=now))
    if [row.id for row in rows] == [v.id for v in texts.versions]:
        return texts
    if not rows:
        # Closed, paused or without an approved text since the snapshot: the reason is raised.
        await cache.campaign_texts(session, campaign_id=campaign_id, fresh=True)
        raise Conflict(_("This campaign has no approved text at the moment."), field="campaign_id")
    # A text approved or withdrawn since the snapshot: the locked rows are the texts.
    versions = tuple(bulk.VersionText(row.id, row.subject, row.body) for row in rows)
    return replace(texts, versions=versions)


def _changed_deputies(
    session: Session, *, cards: dict[int, bulk.DeputyCard], ids: Sequence[int]
) -> bool:
    """Whether any of these deputies is not as its card (activated, deactivated, updated by an
    import, or gone) in this transaction."""
    if not ids:
        return False
    now_seen = {
        row.id: (row.is_active, row.updated_at)
        for row in session.execute(_DEPUTIES, {"ids": list(ids)})
    }
    return any(
        now_seen.get(i) != ((card.is_active, card.updated_at) if card else None)
        for i in ids
        for card in [cards.get(i)]
    )


def _unwritten(prepared: Prepared) -> list[int]:
    """Every deputy not written to yet, whether prepare() left it out (inactive) or not."""
    return [i for i in prepared.submission.deputy_ids if i not in prepared.written]


def _write(
    session: Session, *, prepared: Prepared, now: dt.datetime, check: bool
) -> Confirmed | None:
    """The writes (db.run_sync): the letters inserted and the submission claimed. With `check`,
    first whether the texts and deputies are still those prepare() used: None if not, and
    nothing is written."""
    submission, letters, texts = prepared.submission, prepared.letters, prepared.texts
    if check:
        rows = _approved_rows(session, campaign_id=texts.campaign.id, now=now)
        if [row.id for row in rows] != [v.id for v in texts.versions] or _changed_deputies(
            session, cards=prepared.cards, ids=_unwritten(prepared)
        ):
            return None
    # Those already written to are reported; inactive deputies are left out silently.
    # (A submission stores no skipped deputies since be2a8ef; those pending from before may.)
    skipped = sorted(set(submission.skipped_deputy_ids) | prepared.written)
    claim = {"submission_id": submission.id, "now": now, "skipped": skipped}
    if session.get_bind().dialect.name == "postgresql":
        built = bulk.final_rows(session, letters, versions=texts.versions)
        count, letter_ids = session.execute(
            _CLAIM_AND_INSERT_POSTGRESQL,
            {**bulk.postgresql_arrays(built), **claim, "count": len(built),
             "skipped": json.dumps(skipped)},
        ).one()  # fmt: skip
        claimed = count == 1
    else:
        letter_ids = bulk.insert_letters(session, letters, versions=texts.versions)
        result = session.execute(_CLAIM, {**claim, "ids": letter_ids})
        claimed = result.rowcount == 1  # type: ignore[attr-defined]
    if not claimed:
        # Confirmed by a concurrent request, expired, or deleted by the purge in between.
        row = session.execute(_PENDING, {"token_hash": submission.token_hash}).one_or_none()
        raise _used() if row and row.status != SubmissionStatus.pending else _expired()
    return Confirmed(list(letter_ids), skipped, letters.deputies, texts.campaign.title)


async def confirm(
    session: AsyncSession, *, prepared: Prepared, settings: Settings, cache: IntakeCache
) -> Confirmed:
    """In the write transaction: check what prepare() used, insert the letters, claim the
    submission and commit (see the module's docstring). On an error the caller rolls back."""
    now = utcnow()
    write = partial(_write, prepared=prepared, now=now, check=True)
    done = await run_sync(session, write, commit=True)
    if done is not None:
        return done
    # The texts or the deputies changed since the snapshot (nothing was written, the write
    # transaction ended): read again in a new one (insert_letters builds again a letter whose
    # text is withdrawn), build again if a deputy changed.
    await begin_write(session)
    texts = await _texts_now(session, texts=prepared.texts, cache=cache, now=now)
    ids = _unwritten(prepared)
    letters = prepared.letters
    if await session.run_sync(partial(_changed_deputies, cards=prepared.cards, ids=ids)):
        cards = await cache.deputy_cards(session, ids=ids, fresh=True)
        letters = await _prepare_letters(
            session, prepared.submission, key=prepared.key, texts=texts, cards=cards,
            written=prepared.written, settings=settings,
        )  # fmt: skip
    again = replace(prepared, texts=texts, letters=letters)
    done = await run_sync(
        session, partial(_write, prepared=again, now=now, check=False), commit=True
    )
    assert done is not None
    return done


def _approved(session: Session | AsyncSession) -> Select[int, str, str]:
    if session.get_bind().dialect.name == "postgresql":
        return _APPROVED.with_for_update(read=True, of=AppealVersion)
    # SQLite needs no lock: the confirmation holds the database's write lock.
    return _APPROVED
