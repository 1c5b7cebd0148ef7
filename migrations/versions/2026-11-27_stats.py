"""Statistics: counter tables of letters, kept by triggers on `letter` on both databases

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-27 03:29:53.979319

The triggers move one unit between counter rows on every insert, change of status (or of another
counted column) and delete of a letter, in the same transaction, whatever code made the change.
SQLite: row triggers with UPSERT. PostgreSQL: statement triggers over transition tables, so that a
bulk UPDATE of many letters costs one grouped upsert, taken in key order (fewer lock waits and no
deadlocks between concurrent workers). Existing letters are counted at upgrade.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DAY_KEY = "campaign_id, legislature_id, day, recipient_domain, status"
DEPUTY_KEY = "campaign_id, deputy_id, day, recipient_domain, status"
# The columns whose change moves a letter from one counter row to another.
COUNTED = ("status", "campaign_id", "deputy_id", "recipient_domain", "created_at")


def _sqlite_upserts(row: str, sign: str) -> str:
    """Two UPSERT statements counting the letter `row` (NEW or OLD) with `sign` (+ or -)."""
    day = f"substr({row}.created_at, 1, 10)"
    legislature = f"(SELECT legislature_id FROM deputy WHERE id = {row}.deputy_id)"
    return f"""
  INSERT INTO stats_day ({DAY_KEY}, n)
  VALUES ({row}.campaign_id, {legislature}, {day}, {row}.recipient_domain, {row}.status, {sign}1)
  ON CONFLICT ({DAY_KEY}) DO UPDATE SET n = n {sign} 1;
  INSERT INTO stats_deputy_day ({DEPUTY_KEY}, n)
  VALUES ({row}.campaign_id, {row}.deputy_id, {day}, {row}.recipient_domain, {row}.status, {sign}1)
  ON CONFLICT ({DEPUTY_KEY}) DO UPDATE SET n = n {sign} 1;"""


def _sqlite_triggers() -> list[str]:
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in COUNTED)
    return [
        "CREATE TRIGGER stats_letter_insert AFTER INSERT ON letter BEGIN"
        + _sqlite_upserts("NEW", "+")
        + "\nEND",
        f"CREATE TRIGGER stats_letter_update AFTER UPDATE OF {', '.join(COUNTED)} ON letter "
        f"WHEN {changed} BEGIN"
        + _sqlite_upserts("OLD", "-")
        + _sqlite_upserts("NEW", "+")
        + "\nEND",
        "CREATE TRIGGER stats_letter_delete AFTER DELETE ON letter BEGIN"
        + _sqlite_upserts("OLD", "-")
        + "\nEND",
    ]


def _postgresql_function(name: str, rows: str) -> str:
    """A trigger function that adds the signed rows of `rows` (campaign_id, deputy_id,
    created_at, recipient_domain, status, n) to both counter tables, in key order."""
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  WITH delta AS (
    SELECT r.campaign_id, r.deputy_id, d.legislature_id,
           (r.created_at AT TIME ZONE 'UTC')::date AS day, r.recipient_domain, r.status, r.n
    FROM ({rows}) AS r JOIN deputy AS d ON d.id = r.deputy_id
  ), by_day AS (
    INSERT INTO stats_day AS s ({DAY_KEY}, n)
    SELECT {DAY_KEY}, sum(n) FROM delta
    GROUP BY {DAY_KEY} HAVING sum(n) <> 0 ORDER BY {DAY_KEY}
    ON CONFLICT ({DAY_KEY}) DO UPDATE SET n = s.n + EXCLUDED.n
  )
  INSERT INTO stats_deputy_day AS s ({DEPUTY_KEY}, n)
  SELECT {DEPUTY_KEY}, sum(n) FROM delta
  GROUP BY {DEPUTY_KEY} HAVING sum(n) <> 0 ORDER BY {DEPUTY_KEY}
  ON CONFLICT ({DEPUTY_KEY}) DO UPDATE SET n = s.n + EXCLUDED.n;
  RETURN NULL;
END $$"""


def _postgresql_statements() -> list[str]:
    columns = "campaign_id, deputy_id, created_at, recipient_domain, status"
    changed = f"({', '.join('o.' + c for c in COUNTED)}) IS DISTINCT FROM "
    changed += f"({', '.join('w.' + c for c in COUNTED)})"
    moved = f"old_rows AS o JOIN new_rows AS w ON w.id = o.id WHERE {changed}"
    updated = (
        f"SELECT {', '.join('o.' + c for c in columns.split(', '))}, -1 AS n FROM {moved} "
        f"UNION ALL SELECT {', '.join('w.' + c for c in columns.split(', '))}, 1 AS n FROM {moved}"
    )
    return [
        _postgresql_function("stats_letter_insert", f"SELECT {columns}, 1 AS n FROM new_rows"),
        _postgresql_function("stats_letter_update", updated),
        _postgresql_function("stats_letter_delete", f"SELECT {columns}, -1 AS n FROM old_rows"),
        "CREATE TRIGGER stats_letter_insert AFTER INSERT ON letter "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION stats_letter_insert()",
        "CREATE TRIGGER stats_letter_update AFTER UPDATE ON letter "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION stats_letter_update()",
        "CREATE TRIGGER stats_letter_delete AFTER DELETE ON letter "
        "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION stats_letter_delete()",
    ]


def _backfill(day: str) -> list[str]:
    return [
        f"INSERT INTO stats_day ({DAY_KEY}, n) "
        f"SELECT l.campaign_id, d.legislature_id, {day}, l.recipient_domain, l.status, count(*) "
        "FROM letter AS l JOIN deputy AS d ON d.id = l.deputy_id "
        f"GROUP BY l.campaign_id, d.legislature_id, {day}, l.recipient_domain, l.status",
        f"INSERT INTO stats_deputy_day ({DEPUTY_KEY}, n) "
        f"SELECT l.campaign_id, l.deputy_id, {day}, l.recipient_domain, l.status, count(*) "
        "FROM letter AS l "
        f"GROUP BY l.campaign_id, l.deputy_id, {day}, l.recipient_domain, l.status",
    ]


def upgrade() -> None:
    op.create_table(
        "stats_day",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("legislature_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("recipient_domain", sa.String(length=253), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "campaign_id",
            "legislature_id",
            "day",
            "recipient_domain",
            "status",
            name=op.f("pk_stats_day"),
        ),
    )
    op.create_table(
        "stats_deputy_day",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("deputy_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("recipient_domain", sa.String(length=253), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "campaign_id",
            "deputy_id",
            "day",
            "recipient_domain",
            "status",
            name=op.f("pk_stats_deputy_day"),
        ),
    )
    if op.get_bind().dialect.name == "postgresql":
        statements = _backfill("(l.created_at AT TIME ZONE 'UTC')::date")
        statements += _postgresql_statements()
    else:
        statements = _backfill("substr(l.created_at, 1, 10)") + _sqlite_triggers()
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    for name in ("insert", "update", "delete"):
        op.execute(
            f"DROP TRIGGER IF EXISTS stats_letter_{name}"
            + (" ON letter" if op.get_bind().dialect.name == "postgresql" else "")
        )
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"DROP FUNCTION IF EXISTS stats_letter_{name}()")
    op.drop_table("stats_deputy_day")
    op.drop_table("stats_day")
