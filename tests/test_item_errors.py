"""An item's error, as the queue, the audit trail and the logs keep it, names no patient value.

Portals word their refusals their own way, and some repeat what was searched for ("Meridian Health
has no authorization MPA..."). The runner scrubs an error's message with the run's registered values
before anything writes it down. A claim the portal has no record of is no error: it is a status
(A4, not found), kept with the portal's words, scrubbed the same way.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from playwright.sync_api import Browser

from bot.db import AuditEvent, WorkItem
from bot.models import NewItem, WorkKind
from sandbox import SandboxServer
from scenarios.catalog.workspace import Workspace
from tests.scenarios_support import claim_item, drain, enqueue


def test_a_portal_refusal_naming_the_record_is_kept_without_its_number(
    sandbox: SandboxServer, browser: Browser, tmp_path: Path
) -> None:
    state = sandbox.portal("meridian")
    ws = Workspace.create(tmp_path)
    try:
        account, _ = ws.seed_account(state)
        missing = "MPA9900017"  # a number Meridian could issue, for an authorization it does not hold
        pa = NewItem(
            kind=WorkKind.PA_STATUS, payer="meridian", account=account, payload={"pa_number": missing}
        )
        [item_id] = enqueue(ws, pa)
        report = drain(ws, browser)
        assert [o.state for o in report.outcomes] == ["failed"], report.outcomes
        with ws.services.engine.connect() as conn:
            error, kind = conn.execute(
                sa.select(WorkItem.last_error, WorkItem.last_error_kind).where(WorkItem.id == item_id)
            ).one()
            details = sa.select(AuditEvent.detail).where(AuditEvent.item_id == item_id)
            audit = " ".join(d or "" for d in conn.execute(details).scalars())
        assert kind == "NotFoundOnPortal"
        assert "has no authorization" in error, error  # the portal's words stay
        assert missing not in error and missing not in audit, (error, audit)
        assert report.outcomes[0].error is not None and missing not in report.outcomes[0].error
    finally:
        ws.close()


def test_a_claim_the_portal_has_no_record_of_is_done_as_a4_without_its_number(
    sandbox: SandboxServer, browser: Browser, tmp_path: Path
) -> None:
    ws = Workspace.create(tmp_path)
    try:
        account, _ = ws.seed_account(sandbox.portal("meridian"))
        missing = "MH9900000017"  # a number Meridian could issue, for a claim it does not hold
        [item_id] = enqueue(ws, claim_item(account, missing, key="missing-claim"))
        report = drain(ws, browser)
        assert [o.state for o in report.outcomes] == ["done"], report.outcomes
        item = ws.services.queue.get(item_id)
        assert item.canonical_status == "A4" and item.result is not None
        assert (item.result["status_code"], item.result["status_description"]) == (
            "35",
            "Claim/encounter not found.",
        )
        assert "has no claim" in item.result["payer_wording"]  # the portal's words, scrubbed
        assert missing not in str(item.result)
    finally:
        ws.close()
