"""Builders for the end-to-end tests: real worker processes, real databases, the sandbox portals.

A ``Workspace`` is what one deployment of payerbot has: a database, a vault key file, a documents
folder with the approved letters, an artifacts folder, and a private temporary folder (``TMPDIR``
of its workers, so whatever a crashed worker leaves behind stays where a test can look at it).
Workers are ``payerbot worker --once`` subprocesses configured only by ``PAYERBOT_*`` variables;
the sandbox runs in the test process and the workers reach it over HTTP.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot import faults
from bot.clock import ManualClock
from bot.db import Account, AuditEvent, ItemEvent, Submission, WorkItem, make_engine
from bot.documents import write_letter
from bot.evidence import sha256_file
from bot.models import FINAL_STATES, AppealReason, NewItem, WorkKind
from bot.queue import Queue
from bot.settings import Settings
from portals import check_request
from sandbox import PortalState, SandboxAccount, code_inboxes
from sandbox.data import Claim
from tests.fixtures.sandbox import canary_account, canary_claim
from tests.queue_support import appeal_fields
from vault import Keyring, Vault

PAYERBOT = str(Path(sys.executable).with_name("payerbot"))
# `payerbot` with bot.faults armed: the only way a PAYERBOT_FAULT makes a worker crash or stop
ARMED_PAYERBOT = [sys.executable, str(Path(__file__).with_name("armed_payerbot.py"))]
APPROVER = "Dana Reviewer, CPhT"
FAULT_EXIT = faults.EXIT_CODE  # what an armed fault makes a process exit with
WORKER_TIMEOUT = 90.0  # one `worker --once`; a healthy one takes a few seconds

T = TypeVar("T")


# -- a deployment --------------------------------------------------------------------------------


@dataclass
class Workspace:
    root: Path
    db_url: str
    key_file: Path
    lease_seconds: float = 30.0
    # settings every process of this deployment shares: the workers, and the test's own reaper
    config: dict[str, Any] = field(default_factory=dict)
    # the workers' TMPDIR: short, because Chromium puts a unix socket path in it (108 bytes at most)
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pb-")))
    engine: Engine = field(init=False)
    keyring: Keyring = field(init=False)

    def __post_init__(self) -> None:
        self.engine = make_engine(self.db_url)
        self.keyring = Keyring.from_settings(Settings(vault_key_file=self.key_file))

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def documents(self) -> Path:
        return self.root / "documents"

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": self.root,
            "database_url": self.db_url,
            "artifacts_dir": self.artifacts,
            "documents_dir": self.documents,
            "vault_key_file": self.key_file,
            "lease_seconds": self.lease_seconds,
            **self.config,
            **overrides,
        }
        return Settings(**values)

    def env(self, **extra: str | float | int | None) -> dict[str, str]:
        """The environment of a worker: only PAYERBOT_* settings (and a private TMPDIR)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAYERBOT_")}
        env.update(
            {
                "PAYERBOT_DATA_DIR": str(self.root),
                "PAYERBOT_DATABASE_URL": self.db_url,
                "PAYERBOT_VAULT_KEY_FILE": str(self.key_file),
                "PAYERBOT_ARTIFACTS_DIR": str(self.artifacts),
                "PAYERBOT_DOCUMENTS_DIR": str(self.documents),
                "PAYERBOT_LEASE_SECONDS": str(self.lease_seconds),
                "PAYERBOT_RETRY_BASE_SECONDS": "0.05",
                "PAYERBOT_RETRY_MAX_SECONDS": "0.2",
                "PAYERBOT_LOG_FORMAT": "json",
                "TMPDIR": str(self.tmp),
            }
        )
        for key, value in {**self.config, **extra}.items():
            name = key if key.isupper() else f"PAYERBOT_{key.upper()}"
            if value is None:
                env.pop(name, None)
            else:
                env[name] = json.dumps(value) if isinstance(value, dict | list) else str(value)
        return env

    def read_codes_from(self, state: PortalState) -> None:
        """Configure the sandbox portal's inbox for its payer's e-mailed login codes, as a
        deployment configures its relay (``PAYERBOT_CODE_INBOXES``)."""
        assert state.base_url, "the sandbox is not serving"
        self.config.setdefault("code_inboxes", {}).update(code_inboxes({state.payer_id: state.base_url}))

    def queue(self, *, clock: Any = None) -> Queue:
        return Queue(self.engine, self.settings(), clock=clock, check=check_request)

    def vault(self, *, clock: Any = None) -> Vault:
        return Vault(self.engine, self.keyring, clock=clock)

    def dispose(self) -> None:
        self.engine.dispose()
        shutil.rmtree(self.tmp, ignore_errors=True)


def make_workspace(root: Path, db_url: str, *, lease_seconds: float = 30.0) -> Workspace:
    """A fresh deployment in ``root`` on a migrated database ``db_url``."""
    for sub in ("artifacts", "documents"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    key_file = root / "vault.key"
    key_file.write_text(Keyring.generate().dump(), encoding="utf-8")
    key_file.chmod(0o600)
    return Workspace(root, db_url, key_file, lease_seconds=lease_seconds)


# -- accounts and work ---------------------------------------------------------------------------


def seed_account(ws: Workspace, state: PortalState, **fields: Any) -> tuple[str, SandboxAccount]:
    """A fresh canary login on the sandbox portal, stored in the vault; returns (account, login)."""
    login = canary_account(state, **fields)
    account = f"acct-{login.username.removeprefix('canary-')}"
    assert state.base_url, "the sandbox is not serving"
    ws.read_codes_from(state)
    ws.vault().add_account(
        state.payer_id,
        account,
        username=login.username,
        password=login.password,
        second_factor="totp" if login.totp_secret else "none",
        totp_secret=login.totp_secret,
        portal_url=state.base_url,
    )
    return account, login


def appealable_claims(state: PortalState, count: int, **fields: Any) -> list[Claim]:
    """Fresh denied claims (finalized, so the portal takes appeals on them)."""
    return [canary_claim(state, "Denied", **fields) for _ in range(count)]


def appeal_item(ws: Workspace, payer: str, account: str, claim_number: str, key: str) -> NewItem:
    letter = ws.documents / f"appeal-{claim_number}.pdf"
    if not letter.exists():
        write_letter(ws.documents, letter.name, f"Appeal of claim {claim_number}: please reconsider.")
    return NewItem(
        kind=WorkKind.APPEAL_SUBMISSION,
        payer=payer,
        account=account,
        payload={
            "claim_number": claim_number,
            "reason": AppealReason.MEDICAL_NECESSITY.value,
            "explanation": "The service was medically necessary; see the attached letter.",
            "letter": {"path": letter.name, "sha256": sha256_file(letter)},
            "approved_by": APPROVER,
            **appeal_fields(),
        },
        idempotency_key=key,
    )


def enqueue_appeals(ws: Workspace, payer: str, account: str, claims: Iterable[Claim]) -> list[int]:
    rows = [appeal_item(ws, payer, account, c.claim_number, f"appeal-{c.claim_number}") for c in claims]
    report = ws.queue().enqueue(rows)
    assert report.ok and len(report.queued) == len(rows), report.rejected
    return report.queued


def enqueue_status(ws: Workspace, payer: str, account: str, claim_numbers: Iterable[str]) -> list[int]:
    rows = [
        NewItem(
            kind=WorkKind.CLAIM_STATUS,
            payer=payer,
            account=account,
            payload={"claim_number": n},
            idempotency_key=f"status-{n}-{time.monotonic_ns()}",
        )
        for n in claim_numbers
    ]
    report = ws.queue().enqueue(rows)
    assert report.ok and len(report.queued) == len(rows), report.rejected
    return report.queued


# -- workers -------------------------------------------------------------------------------------


@dataclass
class WorkerRun:
    """One finished worker process."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def log_lines(self) -> list[dict[str, Any]]:
        """The worker's structlog JSON lines (stderr); anything else on stderr is kept as text."""
        out = []
        for line in self.stderr.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"raw": line})
        return out

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.log_lines() if e.get("event") == name]

    def describe(self) -> str:
        return (
            f"exit {self.returncode} after {self.seconds:.1f} s\n--- stdout\n{self.stdout}"
            f"\n--- stderr\n{self.stderr[-4000:]}"
        )


def spawn_worker(
    ws: Workspace, *args: str, fault: str | None = None, **env: str | float | int | None
) -> subprocess.Popen[str]:
    """Start ``payerbot worker --once ARGS``; its output goes to pipes read when it ends. With
    ``fault`` (``<point>:<action>[:<n>]``) the worker runs with its fault hook armed."""
    command = ARMED_PAYERBOT if fault else [PAYERBOT]
    if fault:
        env["fault"] = fault
    argv = [*command, "worker", "--once", *args]
    return subprocess.Popen(
        argv,
        env=ws.env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ws.root,
    )


def finish(
    proc: subprocess.Popen[str], timeout: float = WORKER_TIMEOUT, started: float | None = None
) -> WorkerRun:
    t0 = started if started is not None else time.monotonic()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"worker still running after {timeout} s\n{err[-4000:]}") from None
    return WorkerRun(list(map(str, proc.args)), proc.returncode, out, err, time.monotonic() - t0)  # type: ignore[arg-type]


def run_worker(
    ws: Workspace, *args: str, fault: str | None = None, **env: str | float | int | None
) -> WorkerRun:
    t0 = time.monotonic()
    return finish(spawn_worker(ws, *args, fault=fault, **env), started=t0)


def run_cli(ws: Workspace, *args: str, stdin: str | None = None, **env: str | None) -> WorkerRun:
    """Any other ``payerbot`` command against the workspace."""
    t0 = time.monotonic()
    done = subprocess.run(
        [PAYERBOT, *args],
        env=ws.env(**env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ws.root,
        check=False,
    )
    return WorkerRun([PAYERBOT, *args], done.returncode, done.stdout, done.stderr, time.monotonic() - t0)


@contextmanager
def stopped_process_cleanup(proc: subprocess.Popen[str]) -> Iterator[None]:
    """Never leave a stopped worker behind: continue and kill it if the test fails midway."""
    try:
        yield
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.communicate()


def process_state(pid: int) -> str | None:
    """The one-letter state of a process (``T`` when stopped), None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


# -- waiting -------------------------------------------------------------------------------------


def poll(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    every: float = 0.1,
    watch: subprocess.Popen[str] | None = None,
) -> T:
    """Call ``check`` until it returns something truthy, within ``timeout`` seconds.

    A deadline-bounded poll of state outside the browser (a database row, a process's state).
    Between checks it waits on ``watch`` (a worker process) when given, so a worker that exits
    early ends the wait at once; otherwise on an event nobody sets.
    """
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        if watch is not None:
            with suppress(subprocess.TimeoutExpired):
                watch.wait(timeout=every)
        else:
            pause.wait(every)


# -- the queue's side ----------------------------------------------------------------------------


def reap_expired(ws: Workspace) -> int:
    """Run the reaper as it would run once the dead worker's lease had expired.

    The worker is known to be gone (its process ended), so instead of waiting out the lease the
    reaper runs on a clock just past it; the real-time expiry has its own test (the paused worker).
    """
    later = ManualClock(datetime.now(UTC) + timedelta(seconds=ws.lease_seconds + 1))
    return ws.queue(clock=later).reap()


def item_rows(ws: Workspace, ids: Iterable[int] | None = None) -> list[dict[str, Any]]:
    query = sa.select(WorkItem.__table__).order_by(WorkItem.id)
    if ids is not None:
        query = query.where(WorkItem.id.in_(list(ids)))
    with ws.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def submission_rows(ws: Workspace, item_id: int | None = None) -> list[dict[str, Any]]:
    query = sa.select(Submission.__table__).order_by(Submission.id)
    if item_id is not None:
        query = query.where(Submission.item_id == item_id)
    with ws.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def event_rows(ws: Workspace, item_id: int) -> list[dict[str, Any]]:
    query = sa.select(ItemEvent.__table__).where(ItemEvent.item_id == item_id).order_by(ItemEvent.id)
    with ws.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def audit_rows(ws: Workspace, **where: Any) -> list[dict[str, Any]]:
    query = sa.select(AuditEvent.__table__).order_by(AuditEvent.id)
    for name, value in where.items():
        query = query.where(getattr(AuditEvent, name) == value)
    with ws.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def account_row(ws: Workspace, payer: str, account: str) -> dict[str, Any]:
    with ws.engine.connect() as conn:
        return dict(
            conn.execute(
                sa.select(Account.__table__).where(Account.payer == payer, Account.account == account)
            )
            .mappings()
            .one()
        )


def all_final(ws: Workspace, ids: Iterable[int] | None = None) -> bool:
    return all(r["state"] in {str(s) for s in FINAL_STATES} for r in item_rows(ws, ids))


# -- the sandbox's side --------------------------------------------------------------------------


def login_posts(state: PortalState, username: str) -> int:
    return int(state.stats()["login_posts"].get(username, 0))


def ledger_of(state: PortalState, username: str) -> list[Any]:
    """The portal's ledger entries submitted under one login (the ledger lives for the session)."""
    return [e for e in state.ledger_entries() if e.username == username]


def ledger_by_reference(state: PortalState) -> dict[str, list[str]]:
    """Reference -> the appeal numbers the portal recorded for it (one, when exactly once held)."""
    out: dict[str, list[str]] = {}
    for entry in state.ledger_entries():
        out.setdefault(entry.reference, []).append(entry.appeal_number)
    return out
