"""page fingerprints without record values

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 21:40:00

Fingerprints kept before this revision named links and cells by their text, so claim and PA
numbers sat in ``page_fingerprints``. They are dropped: the next good run of each page writes its
last good look again, now made of roles and control names only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.text("DELETE FROM page_fingerprints"))


def downgrade() -> None:
    pass  # nothing to restore: the rows are re-learned from the next good runs
