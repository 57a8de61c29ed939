"""appeal filing deadline

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 02:00:00

Work items get the filing deadline of an appeal (the last day its payer takes it), null for every
other item and for rows written before this revision. A partial index holds the rows that have one:
the lease works them earliest deadline first within a priority level, and `payerbot queue list
--due-within` finds those falling due.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deadline", sa.Date(), nullable=True))
        batch_op.create_index(
            "ix_work_items_deadline",
            ["state", "payer", "account", "priority", "deadline", "id"],
            unique=False,
            sqlite_where=sa.text("deadline IS NOT NULL"),
            postgresql_where=sa.text("deadline IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.drop_index("ix_work_items_deadline")
        batch_op.drop_column("deadline")
