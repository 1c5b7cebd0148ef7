"""letter: the index by campaign alone becomes one by campaign and sender key

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 10:20:00

Every submission and confirmation asks which deputies a sender already wrote to in a campaign.
Indexed by (campaign_id, sender_key), that is a range of a few rows; the index by campaign_id alone
is its prefix and goes, so the letter table keeps the same number of indexes to maintain.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain CREATE/DROP INDEX: no batch mode, which would rebuild `letter` on SQLite and lose
    # its statistics triggers.
    op.create_index("ix_letter_campaign_id_sender_key", "letter", ["campaign_id", "sender_key"])
    op.drop_index("ix_letter_campaign_id", table_name="letter")


def downgrade() -> None:
    op.create_index("ix_letter_campaign_id", "letter", ["campaign_id"])
    op.drop_index("ix_letter_campaign_id_sender_key", table_name="letter")
