"""prior authorization status as its HCR01 code

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 02:30:00

A PA item's ``canonical_status`` held the project's word (approved, denied, ...); it now holds the
X12 278 HCR01 code, which sweeps and billing systems key on. Rows done before this revision keep
their result, which recorded the code then (``result.hcr01``): that code becomes their status, so
a decided authorization is not checked again only because its word is no code.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# the words before this revision, for a row whose result holds no code
WORDS = {
    "approved": "A1",
    "partially_approved": "A2",
    "denied": "A3",
    "pended": "A4",
    "more_info_requested": "A4",
    "cancelled": "C",
}


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT id, canonical_status, result FROM work_items "
            "WHERE kind = 'pa_status' AND canonical_status IN :words"
        ).bindparams(sa.bindparam("words", expanding=True)),
        {"words": list(WORDS)},
    ).all()
    for row in rows:
        result = json.loads(row.result) if isinstance(row.result, str | bytes) else (row.result or {})
        code = (result or {}).get("hcr01") or WORDS[row.canonical_status]
        conn.execute(
            sa.text("UPDATE work_items SET canonical_status = :code WHERE id = :id"),
            {"code": code, "id": row.id},
        )


def downgrade() -> None:
    pass  # the codes stay: a word can be read from each row's result
