"""SQLite: timestamps written by sqlite3's default adapter take SQLAlchemy's text format

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 18:10:00

Letters inserted by a confirmation (since the intake's third round) and, briefly, submissions and
their confirmation e-mails had their timestamps converted by sqlite3's default adapter
("2026-11-27 17:57:47.350635+00:00", or without the microseconds when they were 0) rather than by
SQLAlchemy ("2026-11-27 17:57:47.350635"). Both read back as the same time, but as text they do
not compare in time order with each other, which every query on these columns relies on. All
were UTC. Nothing to do on PostgreSQL, whose columns are timestamptz.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = {
    "letter": ("created_at", "updated_at", "next_attempt_at"),
    "submission": ("created_at", "expires_at"),
    "confirmation_email": ("created_at", "expires_at", "next_attempt_at"),
}


def _normalized(column: str) -> str:
    without_zone = f"substr({column}, 1, length({column}) - 6)"
    with_fraction = f"{without_zone} || '.000000'"
    return f"CASE WHEN instr({column}, '.') > 0 THEN {without_zone} ELSE {with_fraction} END"


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, columns in COLUMNS.items():
        for column in columns:
            op.execute(
                f"UPDATE {table} SET {column} = {_normalized(column)} WHERE {column} LIKE '%+00:00'"
            )


def downgrade() -> None:
    """Nothing to undo: the same times, in the format everything else has."""
