"""`payerbot report`: one self-contained HTML page, looked at in real Chromium: the counts, the
failure with its screenshot, page change and replay command, the submission with its evidence."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from typer.testing import CliRunner

from bot.cli import app, common
from bot.errors import ConfigError
from sandbox import SandboxServer
from scenarios.catalog.workspace import Workspace
from scenarios.report import parse_since
from tests.scenarios_support import appeal_item, claim_item, drain, enqueue, env_of


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    ws = Workspace.create(tmp_path / "deployment")
    for name, value in env_of(ws).items():
        if name.startswith("PAYERBOT_"):
            monkeypatch.setenv(name, value)
    common.settings.cache_clear()
    common.engine.cache_clear()
    yield ws
    common.engine().dispose()
    common.settings.cache_clear()
    common.engine.cache_clear()
    ws.close()


def test_report_renders_counts_failures_with_screenshots_and_submissions_in_chromium(
    configured: Workspace, sandbox: SandboxServer, browser: Browser, page: Page, tmp_path: Path
) -> None:
    ws = configured
    state = sandbox.portal("meridian")
    state.reset()
    account, _ = ws.seed_account(state)
    claim, denied = state.add_claim("Paid"), state.add_claim("Denied")
    enqueue(
        ws, claim_item(account, claim.claim_number, key="ok"), appeal_item(ws, account, denied.claim_number)
    )
    assert sorted(o.state for o in drain(ws, browser).outcomes) == ["done", "done"]
    state.update_knobs(redesign="renamed")
    try:
        enqueue(ws, claim_item(account, claim.claim_number, key="renamed"))
        [failed] = drain(ws, browser).outcomes
    finally:
        state.reset()
    appeal = next(v for v in ws.services.queue.list() if v.kind == "appeal_submission")
    [submission] = ws.services.queue.get(appeal.id).submissions
    assert submission.evidence is not None

    out = tmp_path / "report.html"
    written = CliRunner().invoke(app, ["report", "--since", "1h", "--out", str(out)])
    assert written.exit_code == 0, written.output
    assert "3 runs, 1 failed, 1 submissions" in written.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600

    page.goto(out.as_uri())
    counts = page.locator("#counts")
    status_row = counts.get_by_role("row").filter(has_text="claim_status")
    expect(status_row.get_by_role("cell")).to_have_text(["meridian", "claim_status", "1", "1", "0", "0", "2"])
    appeal_row = counts.get_by_role("row").filter(has_text="appeal_submission")
    expect(appeal_row.get_by_role("cell")).to_have_text(
        ["meridian", "appeal_submission", "1", "0", "0", "0", "1"]
    )

    failures = page.locator("#failures").get_by_role("row").filter(has_text=str(failed.run_id))
    expect(failures).to_have_count(1)
    expect(failures).to_contain_text("PortalChanged")
    expect(failures).to_contain_text('textbox "Claim number" is now "Claim ID"')
    expect(failures).to_contain_text(f"payerbot replay {failed.run_id} --offline")
    expect(failures.get_by_role("img")).to_have_count(1)

    sent = page.locator("#submissions").get_by_role("row").filter(has_text=str(submission.confirmation_id))
    expect(sent).to_have_count(1)
    expect(sent).to_contain_text(str(submission.evidence.png_sha256))
    expect(sent).to_contain_text(str(submission.evidence.html_sha256))

    images = page.evaluate(
        "Array.from(document.images).map(i => [i.src.slice(0, 11), i.complete && i.naturalWidth])"
    )
    assert images, "the report shows no screenshot"
    assert all(src == "data:image/" and width > 0 for src, width in images), images


def test_since_reads_durations_and_dates_and_names_a_bad_value() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_since("24h", now) == now - timedelta(hours=24)
    assert parse_since("90m", now) == now - timedelta(minutes=90)
    assert parse_since("2w", now) == now - timedelta(weeks=2)
    assert parse_since("2026-02-27", now) == datetime(2026, 2, 27, tzinfo=UTC)
    with pytest.raises(ConfigError, match="--since: 'yesterday'"):
        parse_since("yesterday", now)
