"""A run that fails on a redesigned portal (Meridian's "renamed" layout) and what an operator gets:
a complete bundle, a trace Playwright's own viewer opens, a network log that replays offline to
the same failure, the renamed control named, and a live replay that passes once the layout is back.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import stat
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect
from typer.testing import CliRunner, Result

from bot.cli import app, common
from bot.db import WorkItem
from bot.recording.recorder import Bundle
from bot.recording.store import RunStore
from sandbox import PortalState, SandboxServer
from scenarios.catalog.workspace import Workspace
from scenarios.replay import Replayer
from scenarios.runs import RunView, load_run
from tests.scenarios_support import claim_item, drain, enqueue, env_of, payerbot

RENAMED_SEARCH = 'textbox "Claim number" is now "Claim ID"'


@dataclass
class Deployment:
    ws: Workspace
    state: PortalState
    account: str
    item_id: int
    good_run: str
    run: RunView


@pytest.fixture(scope="module")
def renamed(
    sandbox: SandboxServer, browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """A claim read once on the usual layout (the page's last good look), then on the renamed one."""
    state = sandbox.portal("meridian")
    state.reset()
    ws = Workspace.create(tmp_path_factory.mktemp("replay"))
    account, _ = ws.seed_account(state)
    claim = state.add_claim("Denied")
    enqueue(ws, claim_item(account, claim.claim_number, key="good"))
    good = drain(ws, browser)
    assert [o.state for o in good.outcomes] == ["done"], good.outcomes
    state.update_knobs(redesign="renamed")
    try:
        [item_id] = enqueue(ws, claim_item(account, claim.claim_number, key="renamed"))
        failed = drain(ws, browser)
    finally:
        state.reset()
    assert [o.state for o in failed.outcomes] == ["needs_human"], failed.outcomes
    run = load_run(ws.services.engine, str(failed.outcomes[0].run_id))
    yield Deployment(ws, state, account, item_id, str(good.outcomes[0].run_id), run)
    ws.close()


def test_failed_run_keeps_a_bundle_with_input_by_reference_steps_screenshots_dom_trace_and_har(
    renamed: Deployment,
) -> None:
    run = renamed.run
    assert run.bundle is not None and run.folder is not None
    bundle = Bundle.load(run.folder)
    info = bundle.info
    with renamed.ws.services.engine.connect() as conn:
        stored_digest = conn.execute(
            sa.select(WorkItem.payload_digest).where(WorkItem.id == renamed.item_id)
        ).scalar_one()
    assert (info.item_id, info.kind, info.payer, info.action, info.attempt) == (
        renamed.item_id,
        "claim_status",
        "meridian",
        "check_claim_status",
        1,
    )
    assert info.payload_digest == stored_digest  # the input by reference, never in clear
    assert bundle.outcome == "failed" and bundle.error_kind == "PortalChanged"
    assert bundle.disposition == "human" and bundle.url_path == "/claims"
    assert bundle.locator is not None and "Claim number" in bundle.locator
    kinds = [(s.kind.value, s.outcome.value) for s in bundle.steps]
    assert kinds == [("navigate", "ok"), ("fill", "failed")]
    assert bundle.steps[1].locator == bundle.locator
    assert str(bundle.steps[1].error).startswith("PortalChanged")
    for step in bundle.steps:  # a screenshot for every step, on disk
        assert step.screenshot and (run.folder / step.screenshot).is_file(), step
    for key in ("trace", "har", "dom", "screenshot"):
        assert run.file(key) is not None, key
    dom = run.file("dom")
    assert dom is not None and "Claim ID" in dom.read_text()  # the failing page's DOM, as the bot saw it
    assert 'textbox "Claim ID"' in bundle.fingerprint
    # private: the folder 0700, every file 0600
    assert stat.S_IMODE(run.folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(run.folder.parent.stat().st_mode) == 0o700
    for path in run.folder.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    # the successful run kept only its light record (steps and timings), no bundle
    good = RunStore(renamed.ws.services.engine).get(renamed.good_run)
    assert good is not None and good["outcome"] == "ok" and good["bundle_path"] is None
    assert [s["kind"] for s in good["steps"]["steps"]][:3] == ["navigate", "fill", "click"]
    assert all("duration_ms" in s for s in good["steps"]["steps"])


def test_failing_page_is_compared_with_its_last_good_look_naming_the_renamed_controls(
    renamed: Deployment,
) -> None:
    change = renamed.run.change()
    assert change is not None and change.changed
    lines = change.lines()
    assert RENAMED_SEARCH in lines
    assert 'button "Search" is now "Find"' in lines
    # the good run kept the page's loaded looks: the search form, and the same path with results
    states = renamed.ws.services.runs.baselines.states("meridian", "/claims")
    assert any(
        'textbox "Claim number"' in s and 'table "Adjustment and remark codes"' not in s for s in states
    )
    assert any('table "Adjustment and remark codes"' in s for s in states)


def _listen(proc: subprocess.Popen[str], timeout: float) -> str:
    """The URL `playwright show-trace` serves on (read off its output, within a deadline)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    while True:
        line = lines.get(timeout=timeout)  # raises queue.Empty when the viewer never comes up
        found = re.search(r"http://\S+", line)
        if found:
            return found.group(0)


def test_trace_opens_in_playwrights_own_trace_viewer_showing_the_failed_fill(
    renamed: Deployment, page: Page
) -> None:
    trace = renamed.run.file("trace")
    assert trace is not None
    with zipfile.ZipFile(trace) as archive:
        assert "trace.trace" in archive.namelist()
        events = [json.loads(line) for line in archive.read("trace.trace").decode().splitlines() if line]
    calls = [e for e in events if e.get("type") == "before"]
    assert any(e["method"] == "fill" and "Claim number" in e["params"]["selector"] for e in calls)
    # tracing started after login: no sign-in page and no typed password in the trace
    assert not any("/login" in json.dumps(e.get("params", {})) for e in calls)
    playwright = str(Path(sys.executable).with_name("playwright"))
    viewer = subprocess.Popen(
        [playwright, "show-trace", "--host", "127.0.0.1", "--port", "0", str(trace)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "BROWSER": "none"},
        start_new_session=True,  # the viewer is a Node process under a Python one: end both
    )
    try:
        page.goto(_listen(viewer, timeout=60))
        actions = page.get_by_role("tree")
        expect(actions.get_by_role("treeitem", name=re.compile(r"^Navigate .*claims$"))).to_be_visible()
        failed = actions.get_by_role("treeitem", name=re.compile(r'^Fill .*get_by_label\("Claim number"'))
        expect(failed).to_be_visible()
        expect(page.get_by_role("tab", name=re.compile(r"^Errors"))).to_be_visible()
    finally:
        os.killpg(viewer.pid, signal.SIGTERM)
        viewer.wait(timeout=10)


def test_offline_replay_serves_the_har_and_fails_the_same_way_without_touching_the_portal(
    renamed: Deployment, browser: Browser
) -> None:
    requests_before = renamed.state.requests
    lines: list[str] = []
    # the portal's layout is back to normal: only the recording can still show the renamed page
    result = Replayer(renamed.ws.services, browser, out=lines.append).replay(renamed.run, offline=True)
    assert result.outcome == "failed" and result.error_kind == "PortalChanged", lines
    assert renamed.run.bundle is not None
    assert result.same_as_recorded and result.locator == renamed.run.bundle.locator
    assert renamed.state.requests == requests_before  # nothing reached the portal
    assert [s.verdict for s in result.steps] == ["same as recorded", "same as recorded"]
    assert RENAMED_SEARCH in result.change_lines()
    assert any(RENAMED_SEARCH in line for line in lines)
    assert result.run_id is None  # an offline replay leaves nothing behind


def test_live_replay_fails_alike_while_renamed_and_passes_once_the_layout_is_restored_writing_no_item(
    renamed: Deployment, browser: Browser
) -> None:
    queue_ = renamed.ws.services.queue
    before = queue_.get(renamed.item_id)
    replayer = Replayer(renamed.ws.services, browser, out=lambda _line: None)
    renamed.state.update_knobs(redesign="renamed")
    try:
        still = replayer.replay(renamed.run)
    finally:
        renamed.state.reset()
    assert still.outcome == "failed" and still.same_as_recorded
    assert RENAMED_SEARCH in still.change_lines()
    fixed = replayer.replay(renamed.run)
    assert fixed.outcome == "ok" and fixed.detail is not None and "claim status F2" in fixed.detail
    assert fixed.steps[1].verdict == "now passes (recorded: failed)"
    assert not fixed.same_as_recorded
    after = queue_.get(renamed.item_id)
    assert (after.state, after.attempts, after.last_error, len(after.history)) == (
        before.state,
        before.attempts,
        before.last_error,
        len(before.history),
    )
    replays = [
        r for r in RunStore(renamed.ws.services.engine).list(item_id=renamed.item_id) if r["replay_of"]
    ]
    assert {r["replay_of"] for r in replays} == {renamed.run.id}
    assert sorted(r["outcome"] for r in replays) == ["failed", "ok"]


@pytest.fixture
def cli(renamed: Deployment, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Result]]:
    """`payerbot` in this process, configured for the deployment (commands that start no browser)."""
    for name, value in env_of(renamed.ws).items():
        if name.startswith("PAYERBOT_"):
            monkeypatch.setenv(name, value)
    common.settings.cache_clear()
    common.engine.cache_clear()
    yield lambda *args: CliRunner().invoke(app, list(args))
    common.engine().dispose()
    common.settings.cache_clear()
    common.engine.cache_clear()


def test_scenarios_show_prints_steps_error_files_page_change_and_the_replay_commands(
    renamed: Deployment, cli: Callable[..., Result]
) -> None:
    run = renamed.run
    shown = cli("scenarios", "show", run.id)
    assert shown.exit_code == 0, shown.output
    out = shown.output
    assert "PortalChanged" in out and "failed" in out and "navigate" in out
    assert str(run.file("trace")) in out and f"playwright show-trace {run.file('trace')}" in out
    assert str(run.file("har")) in out
    assert RENAMED_SEARCH in out
    assert f"payerbot replay {run.id}\n" in out and f"payerbot replay {run.id} --offline" in out
    by_item = cli("scenarios", "show", str(renamed.item_id), "--json")
    assert by_item.exit_code == 0, by_item.output
    data = json.loads(by_item.output)
    assert data["run"]["id"] == run.id and RENAMED_SEARCH in data["page_change"]
    listed = cli("scenarios", "list", "--failed", "--json")
    ids = [r["id"] for r in json.loads(listed.output)]
    assert run.id in ids and renamed.good_run not in ids
    missing = cli("scenarios", "show", "no-such-run")
    assert missing.exit_code == 2 and "no run 'no-such-run'" in missing.output


def test_replay_command_offline_prints_each_step_the_page_change_and_exits_1_on_the_same_failure(
    renamed: Deployment,
) -> None:
    done = payerbot(env_of(renamed.ws), "replay", renamed.run.id, "--offline")
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(r"0 navigate\s+/claims\s+ok\s+same as recorded", done.stdout)
    assert re.search(r"1 fill .*Claim number.*FAILED\s+same as recorded", done.stdout)
    assert "this ends the same as the recorded run" in done.stdout
    assert RENAMED_SEARCH in done.stdout


def test_offline_replay_finds_pages_whose_urls_held_values_scrubbed_from_the_recording(
    sandbox: SandboxServer, browser: Browser, tmp_path: Path
) -> None:
    """Meridian's claim page is `/claims?claim_number=...`: the bundle keeps that URL with the claim
    number scrubbed, and an offline replay, which knows the item's input, still finds the page."""
    from bot.recording.recorder import RecordMode
    from bot.worker import Worker

    state = sandbox.portal("meridian")
    state.reset()
    ws = Workspace.create(tmp_path)
    try:
        account, _ = ws.seed_account(state)
        claim = state.add_claim("Denied")
        enqueue(ws, claim_item(account, claim.claim_number, key="recorded-read"))
        report = Worker(ws.services, browser, record=RecordMode.ALWAYS).drain(max_batches=1)
        assert [o.state for o in report.outcomes] == ["done"], report.outcomes
        run = load_run(ws.services.engine, str(report.outcomes[0].run_id))
        har = run.file("har")
        assert har is not None
        assert claim.claim_number not in har.read_text() and "claim_number=[redacted]" in har.read_text()
        requests_before = state.requests
        lines: list[str] = []
        result = Replayer(ws.services, browser, out=lines.append).replay(run, offline=True)
        assert result.outcome == "ok", "\n".join(lines)
        assert result.detail is not None and "F2" in result.detail, result.detail
        assert all(s.verdict == "same as recorded" for s in result.steps), lines
        assert state.requests == requests_before  # served from the recording only
    finally:
        state.reset()
        ws.close()
