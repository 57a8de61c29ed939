"""keyed audit chain

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 22:00:00

Audit rows get the scheme their hash was made with. Rows written before this revision are plain
SHA-256 ("sha256") and keep verifying as they are; every row written after it is HMAC-SHA256 under
the audit chain key sealed in the vault ("hmac-sha256"), the first one chained onto the last old row.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        # the rows already there were made the unkeyed way
        scheme = sa.Column("scheme", sa.String(length=20), server_default="sha256", nullable=False)
        batch_op.add_column(scheme)


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_column("scheme")
