"""Lockout, session reuse and one-time codes with real worker processes against the sandbox.

A login the portal refuses must cost exactly one login POST however many workers run, and must
stop the account (stored, so restarts see it) until a person enables it again. A stored session is
reused instead of logging in; an expired one is replaced once, mid-batch. No one-time code is ever
sent twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser

from bot.audit import AuditTrail
from bot.clock import ManualClock
from bot.db import Account
from bot.session import AccountSession
from portals.meridian import MeridianPortal
from tests.e2e_support import (
    Workspace,
    account_row,
    audit_rows,
    enqueue_status,
    finish,
    item_rows,
    login_posts,
    make_workspace,
    run_cli,
    run_worker,
    seed_account,
    spawn_worker,
)
from tests.fixtures.sandbox import SandboxPortal, canary_claim
from vault.chainkey import VaultChainKeyStore
from vault.totp import TotpSpec

pytestmark = pytest.mark.slow


@pytest.fixture
def ws(tmp_path: Path, db_url: str) -> Iterator[Workspace]:
    workspace = make_workspace(tmp_path, db_url)
    workspace.config.update(record="never", batch_size=3)
    yield workspace
    workspace.dispose()


@pytest.fixture
def sqlite_ws(tmp_path: Path, sqlite_url: str) -> Iterator[Workspace]:
    workspace = make_workspace(tmp_path, sqlite_url)
    workspace.config.update(record="never")
    yield workspace
    workspace.dispose()


def status_items(ws: Workspace, portal: SandboxPortal, account: str, count: int) -> list[int]:
    claims = [canary_claim(portal.state, "Paid").claim_number for _ in range(count)]
    return enqueue_status(ws, "meridian", account, claims)


# -- lockout ---------------------------------------------------------------------------------------


def test_a_rejected_password_costs_one_login_post_across_three_workers_and_a_restart(
    ws: Workspace, meridian_sandbox: SandboxPortal
) -> None:
    portal = meridian_sandbox
    account, login = seed_account(ws, portal.state)
    ids = status_items(ws, portal, account, 7)  # more than one batch of 3
    portal.state.update_knobs(reject_password=True)

    runs = [finish(p) for p in [spawn_worker(ws) for _ in range(3)]]
    assert all(r.returncode == 0 for r in runs), [r.describe() for r in runs]
    restart = run_worker(ws)
    assert restart.returncode == 0, restart.describe()

    assert login_posts(portal.state, login.username) == 1
    info = ws.vault().account("meridian", account)
    assert not info.enabled and "refused the sign-in" in (info.disabled_reason or "")
    rows = item_rows(ws, ids)
    assert [r["state"] for r in rows] == ["needs_human"] * len(ids), [(r["id"], r["state"]) for r in rows]
    assert all("refused the sign-in" in (r["last_error"] or "") for r in rows), rows
    assert len(audit_rows(ws, action="login", outcome="rejected")) == 1
    assert len(audit_rows(ws, action="account_disabled")) == 1

    # a person fixes the password; `vault enable` lets the account work again
    portal.state.update_knobs(reject_password=False)
    enabled = run_cli(ws, "vault", "enable", "meridian", account)
    assert enabled.returncode == 0, enabled.describe()
    for item_id in ids:  # what `payerbot queue retry ID` does, without a process per item
        ws.queue().retry(item_id, actor="operator")
    again = run_worker(ws, batch_size=10)
    assert again.returncode == 0, again.describe()

    assert [r["state"] for r in item_rows(ws, ids)] == ["done"] * len(ids)
    assert login_posts(portal.state, login.username) == 2
    assert ws.vault().account("meridian", account).enabled


def test_a_password_expiry_page_disables_the_account_after_one_login_post(
    sqlite_ws: Workspace, meridian_sandbox: SandboxPortal
) -> None:
    ws, portal = sqlite_ws, meridian_sandbox
    account, login = seed_account(ws, portal.state)
    ids = status_items(ws, portal, account, 2)
    portal.state.update_knobs(password_expired=True)

    first = run_worker(ws)
    restart = run_worker(ws)
    assert first.returncode == 0 and restart.returncode == 0, first.describe() + restart.describe()

    assert login_posts(portal.state, login.username) == 1
    info = ws.vault().account("meridian", account)
    assert not info.enabled and "password change" in (info.disabled_reason or "")
    rows = item_rows(ws, ids)
    assert all(r["state"] == "needs_human" and r["last_error_kind"] for r in rows), rows
    [rejected] = audit_rows(ws, action="login", outcome="rejected")
    assert "PasswordExpired" in (rejected["detail"] or "")


# -- sessions --------------------------------------------------------------------------------------


def test_the_second_run_reuses_the_stored_session_without_a_login(
    sqlite_ws: Workspace, meridian_sandbox: SandboxPortal
) -> None:
    ws, portal = sqlite_ws, meridian_sandbox
    account, login = seed_account(ws, portal.state)
    status_items(ws, portal, account, 2)
    first = run_worker(ws)
    assert first.returncode == 0, first.describe()
    assert login_posts(portal.state, login.username) == 1
    assert ws.vault().account("meridian", account).has_session

    ids = status_items(ws, portal, account, 2)
    second = run_worker(ws)
    assert second.returncode == 0, second.describe()

    assert login_posts(portal.state, login.username) == 1
    assert [r["state"] for r in item_rows(ws, ids)] == ["done", "done"]
    assert len(audit_rows(ws, action="session_reused")) == 1
    assert len(audit_rows(ws, action="login", outcome="ok")) == 1


def test_a_session_that_expires_mid_batch_is_renewed_once_and_the_batch_completes(
    sqlite_ws: Workspace, meridian_sandbox: SandboxPortal
) -> None:
    """A fresh session makes one authenticated request landing on the dashboard and two per
    claim lookup (the search page, the result): with a limit of 5, the third lookup finds the
    session gone, the runner logs in again, and the batch finishes on the new session."""
    ws, portal = sqlite_ws, meridian_sandbox
    account, login = seed_account(ws, portal.state)
    ids = status_items(ws, portal, account, 3)
    portal.state.update_knobs(session_expiry_requests=5)

    run = run_worker(ws)

    assert run.returncode == 0, run.describe()
    assert [r["state"] for r in item_rows(ws, ids)] == ["done"] * 3
    assert login_posts(portal.state, login.username) == 2
    assert len(run.events("session expired mid-batch; logging in again")) == 1
    assert len(audit_rows(ws, action="login", outcome="ok")) == 2


# -- one-time codes ----------------------------------------------------------------------------------


def test_two_logins_in_one_time_step_send_two_different_codes_the_portal_accepts(
    sqlite_ws: Workspace, meridian_sandbox: SandboxPortal, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second login of the same TOTP step waits for the next step (the vault's atomic claim on
    a manual clock, so no real wait); the sandbox, which refuses a replayed code, refuses none."""
    ws, portal = sqlite_ws, meridian_sandbox
    account, login = seed_account(ws, portal.state)
    assert login.totp_secret
    spec = TotpSpec(login.totp_secret)
    now = datetime.now(UTC)
    step = spec.step_at(now)
    # one second into the current real step, so both codes fall in the portal's skew window
    clock = ManualClock(datetime.fromtimestamp(step * spec.interval + 1, UTC))
    verdicts: list[tuple[str, str]] = []
    check = portal.state.totp.check

    def counting_check(username: str, secret: str, code: str, **kw: Any) -> str:
        verdict = check(username, secret, code, **kw)
        if username == login.username:
            verdicts.append((code, verdict))
        return verdict

    monkeypatch.setattr(portal.state.totp, "check", counting_check)

    def login_once() -> AccountSession:
        vault = ws.vault(clock=clock)
        vault.clear_session("meridian", account)
        session = AccountSession(
            browser=browser,
            portal_cls=MeridianPortal,
            portal_url=portal.url,
            payer="meridian",
            account=account,
            vault=vault,
            audit=AuditTrail(ws.engine, actor="payerbot@test", clock=clock, key=VaultChainKeyStore(vault)),
            settings=ws.settings(),
        )
        session.ensure()
        return session

    assert login_once().logins == 1
    started_second = clock.now()
    assert login_once().logins == 1

    assert [v for _, v in verdicts] == ["ok", "ok"], verdicts
    assert verdicts[0][0] != verdicts[1][0]
    assert verdicts[0][0] == spec.code_for_step(step) and verdicts[1][0] == spec.code_for_step(step + 1)
    assert clock.now() >= datetime.fromtimestamp((step + 1) * spec.interval, UTC) > started_second
    with ws.engine.connect() as conn:
        claimed = conn.execute(sa.select(Account.totp_last_step).where(Account.account == account)).scalar()
    assert claimed == step + 1
    assert portal.state.stats()["second_factor_posts"][login.username] == 2
    # the portal does refuse a replay: sending the first code again is turned away
    assert check(login.username, login.totp_secret, verdicts[0][0]) == "reused"
    assert account_row(ws, "meridian", account)["enabled"]
