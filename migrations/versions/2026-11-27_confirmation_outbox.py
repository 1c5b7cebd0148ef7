"""confirmation outbox: the citizen's confirmation e-mails, sent by the delivery worker

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 05:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "confirmation_email",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("to_address", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_confirmation_email")),
    )
    with op.batch_alter_table("confirmation_email", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_confirmation_email_next_attempt_at"), ["next_attempt_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("confirmation_email", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_confirmation_email_next_attempt_at"))
    op.drop_table("confirmation_email")
