"""An item's error, as the queue, the audit trail and the logs keep it, names no patient value.

Portals word their refusals their own way, and some repeat what was searched for ("Meridian Health
has no claim MH..."). The runner scrubs an error's message with the run's registered values before
anything writes it down.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from playwright.sync_api import Browser

from bot.db import AuditEvent, WorkItem
from sandbox import SandboxServer
from scenarios.catalog.workspace import Workspace
from tests.scenarios_support import claim_item, drain, enqueue


def test_a_portal_refusal_naming_the_claim_is_kept_without_the_claim_number(
    sandbox: SandboxServer, browser: Browser, tmp_path: Path
) -> None:
    state = sandbox.portal("meridian")
    ws = Workspace.create(tmp_path)
    try:
        account, _ = ws.seed_account(state)
        missing = "MH9900000017"  # a number Meridian could issue, for a claim it does not hold
        [item_id] = enqueue(ws, claim_item(account, missing, key="missing-claim"))
        report = drain(ws, browser)
        assert [o.state for o in report.outcomes] == ["failed"], report.outcomes
        with ws.services.engine.connect() as conn:
            error, kind = conn.execute(
                sa.select(WorkItem.last_error, WorkItem.last_error_kind).where(WorkItem.id == item_id)
            ).one()
            details = sa.select(AuditEvent.detail).where(AuditEvent.item_id == item_id)
            audit = " ".join(d or "" for d in conn.execute(details).scalars())
        assert kind == "NotFoundOnPortal"
        assert "has no claim" in error, error  # the portal's words stay
        assert missing not in error and missing not in audit, (error, audit)
        assert report.outcomes[0].error is not None and missing not in report.outcomes[0].error
    finally:
        ws.close()
