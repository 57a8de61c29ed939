"""Process hygiene: Chromium and Playwright's driver start without our secrets in their environment,
the data directory and the SQLite files are private, and the fault hook is inert unless a test
arms it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, sync_playwright
from structlog.testing import capture_logs

from bot import faults
from bot.browser import launch
from bot.db import make_engine
from bot.migrate import upgrade
from bot.settings import Settings
from bot.worker import open_browser
from sandbox import PortalState
from tests.e2e_support import (
    PAYERBOT,
    Workspace,
    appealable_claims,
    enqueue_appeals,
    item_rows,
    ledger_of,
    make_workspace,
    run_worker,
    seed_account,
)
from tests.fixtures.sandbox import SandboxPortal
from vault import Keyring

# -- the browser's environment -------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):  # a process that ended while we read
            continue
        out.setdefault(ppid, []).append(int(entry.name))
    return out


def descendants(pid: int) -> Iterator[tuple[int, str, bytes]]:
    """(pid, command line, raw environment) of every process below ``pid``."""
    children = _children()
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        todo += children.get(child, [])
        try:
            cmdline = (Path(f"/proc/{child}") / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = (Path(f"/proc/{child}") / "environ").read_bytes()
        except OSError:
            continue
        yield child, cmdline, environ


def _processes_of(browser: Browser) -> list[tuple[int, str, bytes]]:
    page = browser.new_page()  # a renderer too, not only the browser process
    page.set_content("<p>hello</p>")
    found = list(descendants(os.getpid()))
    page.close()
    return found


def _launched_by_bot_browser() -> list[tuple[int, str, bytes]]:
    """Chromium from ``bot.browser.launch`` under a driver that holds the whole environment (as the
    test session's does)."""
    # the session's shared browser may run below this process too: only the new ones count
    before = {pid for pid, _, _ in descendants(os.getpid())}
    with sync_playwright() as playwright:
        browser = launch(playwright, headless=True)
        try:
            return [p for p in _processes_of(browser) if "chrom" in p[1] and p[0] not in before]
        finally:
            browser.close()


def _opened_by_the_worker(settings: Settings) -> list[tuple[int, str, bytes]]:
    before = {pid for pid, _, _ in descendants(os.getpid())}
    with open_browser(settings, headless=True) as browser:
        return [p for p in _processes_of(browser) if p[0] not in before]


@pytest.fixture
def secrets_in_environ(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Our settings' secrets in this process's environment, as a deployment sets them."""
    key = Keyring.generate().dump().splitlines()[1]
    monkeypatch.setenv("PAYERBOT_VAULT_KEY", key)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-canary-0a1b2c3d4e5f")
    return [key.split(":", 1)[1].encode(), b"sk-canary-0a1b2c3d4e5f"]


def assert_clean(found: list[tuple[int, str, bytes]], secrets: list[bytes]) -> None:
    for pid, cmd, environ in found:
        names = [v.split(b"=", 1)[0].decode() for v in environ.split(b"\0") if v]
        ours = [n for n in names if n.startswith(("PAYERBOT_", "OPENAI_"))]
        assert not ours, f"process {pid} ({cmd[:60]}) holds {ours}"
        assert not [s for s in secrets if s in environ], f"process {pid} ({cmd[:60]}) holds a secret's value"


def test_chromium_launched_through_bot_browser_gets_none_of_our_settings(
    secrets_in_environ: list[bytes],
) -> None:
    # its own thread: the session's sync Playwright may already drive this one
    with ThreadPoolExecutor(1) as pool:
        chromium = pool.submit(_launched_by_bot_browser).result()
    assert chromium, "no Chromium process found below this one"
    assert_clean(chromium, secrets_in_environ)
    # what it needs stays (its helpers write their titles over their environment, so the browser's)
    [(_, _, kept)] = [p for p in chromium if "--type=" not in p[1]]
    assert b"PATH=" in kept and b"HOME=" in kept


def test_the_workers_playwright_driver_gets_none_of_our_settings(
    secrets_in_environ: list[bytes], tmp_path: Path
) -> None:
    with ThreadPoolExecutor(1) as pool:
        found = pool.submit(_opened_by_the_worker, Settings(data_dir=tmp_path)).result()
    drivers = [cmd for _, cmd, _ in found if "playwright" in cmd and "chrom" not in cmd]
    assert drivers, f"no Playwright driver found below this one: {[cmd[:80] for _, cmd, _ in found]}"
    assert_clean(found, secrets_in_environ)
    assert os.environ["PAYERBOT_VAULT_KEY"]  # and this process still has its settings


# -- the data directory and the SQLite files ----------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_fresh_data_dir_and_its_database_are_private_under_umask_022(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "payerbot"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYERBOT_")}
    env["PAYERBOT_DATA_DIR"] = str(data)
    done = subprocess.run(
        [PAYERBOT, "db", "upgrade"],
        env=env,
        umask=0o022,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (oct(mode(data)), oct(mode(data / "payerbot.db"))) == ("0o700", "0o600")

    # the worker's engine, with the database open and written: its WAL and shared memory too
    previous = os.umask(0o022)
    try:
        engine = make_engine(Settings(data_dir=data).resolved_database_url)
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO audit_head (id, last_id, last_hash) VALUES (99, 0, 'x')"))
            files = {p.name: oct(mode(p)) for p in data.iterdir()}
        engine.dispose()
    finally:
        os.umask(previous)
    assert files == {"payerbot.db": "0o600", "payerbot.db-wal": "0o600", "payerbot.db-shm": "0o600"}


def test_a_looser_data_dir_and_database_are_tightened_with_a_warning(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    db = data / "payerbot.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    engine.dispose()
    for path in (db, data / "payerbot.db-wal"):
        path.touch()
        path.chmod(0o644)

    with capture_logs() as logs:
        engine = make_engine(Settings(data_dir=data).resolved_database_url)
        engine.dispose()
    assert (oct(mode(data)), oct(mode(db)), oct(mode(data / "payerbot.db-wal"))) == (
        "0o700",
        "0o600",
        "0o600",
    )
    warned = {e["path"] for e in logs if e["log_level"] == "warning"}
    assert {str(data), str(db), str(data / "payerbot.db-wal")} <= warned, logs


# -- the fault hook ------------------------------------------------------------------------------


def test_the_fault_hook_is_inert_unless_test_code_arms_it(monkeypatch: pytest.MonkeyPatch) -> None:
    exits: list[int] = []
    monkeypatch.setattr(os, "_exit", exits.append)  # a fault that fired would end pytest itself
    monkeypatch.setenv("PAYERBOT_FAULT", "before_intent:exit")
    faults.point("before_intent")
    assert exits == [], "PAYERBOT_FAULT alone made the process exit"
    faults.arm()
    try:
        faults.point("before_intent")
    finally:
        faults.disarm()
    assert exits == [86]


@pytest.fixture
def ws(tmp_path: Path, sqlite_url: str) -> Iterator[Workspace]:
    workspace = make_workspace(tmp_path, sqlite_url)
    yield workspace
    workspace.dispose()


def test_payerbot_worker_ignores_payerbot_fault(ws: Workspace, meridian_sandbox: SandboxPortal) -> None:
    state: PortalState = meridian_sandbox.state
    ws.config.update(record="never")
    account, login = seed_account(ws, state)
    [item_id] = enqueue_appeals(ws, "meridian", account, appealable_claims(state, 1))

    run = run_worker(ws, PAYERBOT_FAULT="before_intent:exit")  # the production entry point, unarmed

    assert run.returncode == 0, run.describe()
    row = item_rows(ws, [item_id])[0]
    assert row["state"] == "done", (row["last_error_kind"], row["last_error"])
    assert len(ledger_of(state, login.username)) == 1
    assert run.args[0] == PAYERBOT and sys.executable not in run.args
