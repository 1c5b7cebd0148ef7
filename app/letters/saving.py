"""A submission and its confirmation e-mail, written together or not at all.

This is the whole of a submission's database work, so its cost is the intake's. On PostgreSQL it
is one statement in autocommit, the submission inserted in a data-modifying WITH and the outbox
row by the statement around it: one round trip, no BEGIN or COMMIT, atomic as any statement.
Through SQLAlchemy that costs about half the CPU of a transaction of two INSERTs (in process,
0.6-0.8 against 1.3-1.7 ms; bench/README.md). SQLite has no data-modifying WITH: there the two
INSERTs are one write transaction, sent in one trip to the connection's thread
(db.insert_and_commit).
"""

from __future__ import annotations

from functools import cache
from typing import Any, cast

from sqlalchemy import Insert, Table, bindparam, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import insert_and_commit
from app.letters import flow
from app.letters.submissions import ConfirmationEmail, Submission

# Bound parameters' prefixes: both tables have created_at and expires_at.
_SUBMISSION, _EMAIL = "s_", "e_"


@cache
def _statement(submission_columns: tuple[str, ...], email_columns: tuple[str, ...]) -> Insert:
    """The one statement, for rows with these keys (built once: SQLAlchemy caches its SQL by
    the statement's structure, which a statement made per request would have to compute)."""
    submission = cast(Table, Submission.__table__)
    email = cast(Table, ConfirmationEmail.__table__)
    submitted = (
        insert(submission)
        .values(
            {
                name: bindparam(_SUBMISSION + name, type_=submission.c[name].type)
                for name in submission_columns
            }
        )
        .returning(submission.c.id)
        .cte("submitted")
    )
    return (
        insert(email)
        .values(
            {name: bindparam(_EMAIL + name, type_=email.c[name].type) for name in email_columns}
        )
        .add_cte(submitted)
    )


async def save(engine: AsyncEngine, *, submitted: flow.Submitted, email: dict[str, Any]) -> None:
    """Write the submission (flow.submit) and its e-mail's outbox row
    (mailer.confirmation_row), committed, on a connection of the engine's own (no session: its
    machinery cost more than the write, bench/README.md)."""
    if engine.dialect.name != "postgresql":
        tables = cast(Table, Submission.__table__), cast(Table, ConfirmationEmail.__table__)
        await insert_and_commit(engine, list(zip(tables, (submitted.row, email), strict=True)))
        return
    statement = _statement(tuple(submitted.row), tuple(email))
    params = {_SUBMISSION + k: v for k, v in submitted.row.items()}
    params.update({_EMAIL + k: v for k, v in email.items()})
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(statement, params)
