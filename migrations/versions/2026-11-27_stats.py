"""Statistics: counter tables of letters, kept by triggers on `letter` on both databases

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-27 03:29:53.979319

The triggers move one unit between counter rows on every insert, change of status (or of another
counted column) and delete of a letter, in the same transaction, whatever code made the change.
SQLite: row triggers with UPSERT. PostgreSQL: statement triggers over transition tables, so that a
bulk UPDATE of many letters costs one grouped upsert per table, taken in key order (fewer lock
waits, no deadlocks between concurrent workers). Existing letters are counted at upgrade.

Five grains, so that each dashboard query reads a small table: by day (with legislature, domain)
and by deputy and day for date filters and exports; without the day for the whole period.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each counter table and its key, in primary-key order.
TABLES: dict[str, tuple[str, ...]] = {
    "stats_day": ("campaign_id", "legislature_id", "day", "recipient_domain", "status"),
    "stats_deputy_day": ("campaign_id", "deputy_id", "day", "recipient_domain", "status"),
    "stats_total": ("campaign_id", "legislature_id", "recipient_domain", "status"),
    "stats_campaign_day": ("campaign_id", "day", "status"),
    "stats_deputy": ("campaign_id", "deputy_id", "status"),
}


def _type(column: str) -> sa.types.TypeEngine[Any]:
    if column == "day":
        return sa.Date()
    if column == "recipient_domain":
        return sa.String(length=253)
    if column == "status":
        return sa.String(length=16)
    return sa.Integer()


# The columns whose change moves a letter from one counter row to another.
COUNTED = ("status", "campaign_id", "deputy_id", "recipient_domain", "created_at")


def _sqlite_value(column: str, row: str) -> str:
    if column == "legislature_id":
        return f"(SELECT legislature_id FROM deputy WHERE id = {row}.deputy_id)"
    if column == "day":
        return f"substr({row}.created_at, 1, 10)"
    return f"{row}.{column}"


def _sqlite_upserts(row: str, sign: str) -> str:
    """An UPSERT per counter table, counting the letter `row` (NEW or OLD) with `sign`."""
    statements = []
    for table, key in TABLES.items():
        columns = ", ".join(key)
        values = ", ".join(_sqlite_value(c, row) for c in key)
        statements.append(
            f"\n  INSERT INTO {table} ({columns}, n) VALUES ({values}, {sign}1)"
            f"\n  ON CONFLICT ({columns}) DO UPDATE SET n = n {sign} 1;"
        )
    return "".join(statements)


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
    created_at, recipient_domain, status, n) to every counter table, in key order."""
    upserts = []
    for table, key in TABLES.items():
        columns = ", ".join(key)
        upserts.append(
            f"INSERT INTO {table} AS s ({columns}, n)\n"
            f"    SELECT {columns}, sum(n) FROM delta GROUP BY {columns} HAVING sum(n) <> 0\n"
            f"    ORDER BY {columns}\n"
            f"    ON CONFLICT ({columns}) DO UPDATE SET n = s.n + EXCLUDED.n"
        )
    ctes = "".join(f",\n  up_{i} AS (\n    {u}\n  )" for i, u in enumerate(upserts[:-1]))
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  WITH delta AS (
    SELECT r.campaign_id, r.deputy_id, d.legislature_id,
           (r.created_at AT TIME ZONE 'UTC')::date AS day, r.recipient_domain, r.status, r.n
    FROM ({rows}) AS r JOIN deputy AS d ON d.id = r.deputy_id
  ){ctes}
  {upserts[-1]};
  RETURN NULL;
END $$"""


def _postgresql_statements() -> list[str]:
    columns = ("campaign_id", "deputy_id", "created_at", "recipient_domain", "status")
    changed = f"({', '.join('o.' + c for c in COUNTED)}) IS DISTINCT FROM "
    changed += f"({', '.join('w.' + c for c in COUNTED)})"
    moved = f"old_rows AS o JOIN new_rows AS w ON w.id = o.id WHERE {changed}"
    updated = (
        f"SELECT {', '.join('o.' + c for c in columns)}, -1 AS n FROM {moved} "
        f"UNION ALL SELECT {', '.join('w.' + c for c in columns)}, 1 AS n FROM {moved}"
    )
    plain = ", ".join(columns)
    return [
        _postgresql_function("stats_letter_insert", f"SELECT {plain}, 1 AS n FROM new_rows"),
        _postgresql_function("stats_letter_update", updated),
        _postgresql_function("stats_letter_delete", f"SELECT {plain}, -1 AS n FROM old_rows"),
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
    expressions = {
        "campaign_id": "l.campaign_id",
        "deputy_id": "l.deputy_id",
        "legislature_id": "d.legislature_id",
        "day": day,
        "recipient_domain": "l.recipient_domain",
        "status": "l.status",
    }
    statements = []
    for table, key in TABLES.items():
        values = ", ".join(expressions[c] for c in key)
        statements.append(
            f"INSERT INTO {table} ({', '.join(key)}, n) SELECT {values}, count(*) "
            f"FROM letter AS l JOIN deputy AS d ON d.id = l.deputy_id GROUP BY {values}"
        )
    return statements


def upgrade() -> None:
    for table, key in TABLES.items():
        op.create_table(
            table,
            *(sa.Column(c, _type(c), nullable=False) for c in key),
            sa.Column("n", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint(*key, name=op.f(f"pk_{table}")),
        )
    with op.batch_alter_table("letter", schema=None) as batch_op:
        batch_op.create_index(
            "ix_letter_campaign_id_sender_email", ["campaign_id", "sender_email"], unique=False
        )
    if op.get_bind().dialect.name == "postgresql":
        statements = _backfill("(l.created_at AT TIME ZONE 'UTC')::date")
        statements += _postgresql_statements()
    else:
        statements = _backfill("substr(l.created_at, 1, 10)") + _sqlite_triggers()
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name in ("insert", "update", "delete"):
        op.execute(
            f"DROP TRIGGER IF EXISTS stats_letter_{name}" + (" ON letter" if postgresql else "")
        )
        if postgresql:
            op.execute(f"DROP FUNCTION IF EXISTS stats_letter_{name}()")
    for table in reversed(TABLES):
        op.drop_table(table)
    with op.batch_alter_table("letter", schema=None) as batch_op:
        batch_op.drop_index("ix_letter_campaign_id_sender_email")
