"""letter: drop the index by campaign and sender e-mail, which nothing reads any more

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 17:20:00

The statistics' count of distinct senders read (campaign_id, sender_email) until the sender key
landed; it reads (campaign_id, sender_key) since, through ix_letter_campaign_id_sender_key. The
old index was still written with every letter (a confirmation inserts 50) and with every purge
that erases the e-mail: in a test of 300 confirmations of 50 letters, PostgreSQL spent about
0.4 ms less per confirmation without it.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain DROP/CREATE INDEX: no batch mode, which would rebuild `letter` on SQLite and lose
    # its statistics triggers.
    op.drop_index("ix_letter_campaign_id_sender_email", table_name="letter")


def downgrade() -> None:
    op.create_index("ix_letter_campaign_id_sender_email", "letter", ["campaign_id", "sender_email"])
