"""letter: once per deputy keyed sender first; the indexes by deputy and by sender dropped

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27 19:10:00

A confirmation inserts 50 letters of one sender, one per deputy. With the unique key
(campaign_id, deputy_id, sender_key) they went to 50 places of that index, and to 50 more of
ix_letter_deputy_id: about a hundred index pages written per confirmation, on SQLite each copied
whole into the WAL at COMMIT. Keyed (campaign_id, sender_key, deputy_id), they are one run of the
index; its prefix is ix_letter_campaign_id_sender_key's, which goes. Nothing reads letters by
deputy alone, and deputies are never deleted (the foreign key's check), so ix_letter_deputy_id
goes too. The plain SQLite insert of a confirmation's letters cost 2.8 ms of CPU instead of 4.6
(with time-ordered Message-IDs, which the same commit brings; bench/README.md, sixth round).

On SQLite the change of the unique key rebuilds `letter`, and dropping a table drops its
triggers: the statistics triggers are read first and made again after. On PostgreSQL the new
key's index is built while `letter` is locked (intake and delivery wait): on a large table, run
it in a quiet hour.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KEY = ("campaign_id", "deputy_id", "sender_key")
NEW_KEY = ("campaign_id", "sender_key", "deputy_id")


def _name(key: Sequence[str]) -> str:
    return "uq_letter_" + "_".join(key)


def _rekey(old: Sequence[str], new: Sequence[str]) -> None:
    """Replace the unique key `old` by `new`, keeping the triggers of a rebuilt SQLite table."""
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    query = "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'letter'"
    triggers = list(bind.execute(sa.text(query)).scalars()) if sqlite else []
    with op.batch_alter_table("letter", schema=None) as batch_op:
        batch_op.drop_constraint(_name(old), type_="unique")
        batch_op.create_unique_constraint(_name(new), list(new))
    for trigger in triggers:
        bind.exec_driver_sql(trigger)  # as stored: no `:name` in it read as a parameter


def upgrade() -> None:
    op.drop_index("ix_letter_campaign_id_sender_key", table_name="letter")
    op.drop_index("ix_letter_deputy_id", table_name="letter")
    _rekey(OLD_KEY, NEW_KEY)


def downgrade() -> None:
    _rekey(NEW_KEY, OLD_KEY)
    op.create_index("ix_letter_deputy_id", "letter", ["deputy_id"])
    op.create_index("ix_letter_campaign_id_sender_key", "letter", ["campaign_id", "sender_key"])
