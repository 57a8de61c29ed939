"""The scheduler: its ticks (sweeps, work, reaping), one scheduler at a time, and the real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

import scheduler
from bot.clock import ManualClock
from bot.errors import SchedulerBusy
from bot.models import NewItem, WorkKind
from bot.services import Services, build_services
from bot.settings import Settings
from sandbox.server import SandboxServer
from tests.queue_support import finish
from vault import Keyring


def _services(engine: Engine, clock: ManualClock, **overrides: object) -> Services:
    settings = Settings(vault_key=Keyring.generate().dump(), sweep_interval_minutes=60, **overrides)  # type: ignore[arg-type]
    services = build_services(settings, engine=engine, clock=clock)
    services.vault.add_account(
        "meridian", "acct", username="u", password="p", second_factor="totp", totp_secret="JBSWY3DPEHPK3PXP"
    )
    return services


def _finish(services: Services, claim: str, status: str) -> None:
    item = NewItem(
        kind=WorkKind.CLAIM_STATUS, payer="meridian", account="acct", payload={"claim_number": claim}
    )
    finish(services.queue, item, status, {"category": status})


def test_a_sweep_rechecks_open_claims_once_per_interval(engine: Engine) -> None:
    clock = ManualClock()
    services = _services(engine, clock)
    _finish(services, "MH2026000001", "P1")  # pending: can still change
    _finish(services, "MH2026000002", "F1")  # paid: final
    ticks = scheduler.Ticks(services)
    assert ticks.sweep() == 0  # checked just now
    clock.advance(timedelta(minutes=61).total_seconds())
    assert ticks.sweep() == 1
    assert ticks.sweep() == 0  # the same slot again: the key is taken
    queued = services.queue.list(state="queued")
    assert [services.queue.get(i.id).payload["claim_number"] for i in queued] == ["MH2026000001"]


STILL_OPEN = ("A0", "A1", "A2", "A4", "P1", "P2", "P3", "P5", "R4", "E1", "E2")  # checked again
FINAL = ("F1", "F2", "F3", "F3F", "F3N", "F4", "A3", "A6", "A7", "A8")  # never change again


def test_sweeps_stop_on_final_and_returned_claims_and_go_on_for_the_rest(engine: Engine) -> None:
    clock = ManualClock()
    services = _services(engine, clock)
    numbers = {}
    for n, status in enumerate((*STILL_OPEN, *FINAL), 1):
        numbers[f"MH20260001{n:02d}"] = status
        _finish(services, f"MH20260001{n:02d}", status)
    clock.advance(timedelta(minutes=61).total_seconds())
    assert scheduler.Ticks(services).sweep() == len(STILL_OPEN)
    queued = [services.queue.get(i.id).payload["claim_number"] for i in services.queue.list(state="queued")]
    assert sorted(numbers[number] for number in queued) == sorted(STILL_OPEN)


def test_jobs_never_pile_up(engine: Engine) -> None:
    services = _services(engine, ManualClock(), worker_interval_seconds=15, reaper_interval_seconds=45)
    jobs = {job.id: job for job in scheduler.build_scheduler(services).get_jobs()}
    assert set(jobs) == {"sweep", "work", "reap"}
    for job in jobs.values():
        assert job.max_instances == 1 and job.coalesce is True
        assert job.misfire_grace_time >= 1
    assert jobs["work"].trigger.interval == timedelta(seconds=15)
    assert jobs["reap"].trigger.interval == timedelta(seconds=45)


def test_only_one_scheduler_runs_per_database(engine: Engine) -> None:
    first, second = (
        _services(engine, ManualClock()),
        build_services(Settings(vault_key=Keyring.generate().dump()), engine=engine),
    )
    with (
        scheduler.single_scheduler(first),
        pytest.raises(SchedulerBusy),
        scheduler.single_scheduler(second),
    ):
        pass
    with scheduler.single_scheduler(second):  # released when the first stopped
        pass


def test_the_scheduler_process_works_the_queue_and_stops_on_sigterm(tmp_path: Path) -> None:
    key = Keyring.generate().dump()
    db = tmp_path / "payerbot.db"
    with SandboxServer(["meridian"]) as sandbox:
        portal = sandbox.portal("meridian")
        account = sorted(portal.accounts.values(), key=lambda a: a.account)[0]
        claims = sorted(portal.claims)[:2]
        settings = Settings(database_url=f"sqlite:///{db}", vault_key=key)  # type: ignore[arg-type]
        services = build_services(settings)
        from bot.migrate import upgrade

        upgrade(services.engine)
        services.vault.add_account(
            "meridian",
            "ops",
            username=account.username,
            password=account.password,
            second_factor="totp",
            totp_secret=account.totp_secret,
            portal_url=sandbox.url("meridian"),
        )
        services.queue.enqueue(
            [
                NewItem(
                    kind=WorkKind.CLAIM_STATUS, payer="meridian", account="ops", payload={"claim_number": c}
                )
                for c in claims
            ]
        )
        env = {
            **os.environ,
            "PAYERBOT_DATABASE_URL": f"sqlite:///{db}",
            "PAYERBOT_VAULT_KEY": key,
            "PAYERBOT_WORKER_INTERVAL_SECONDS": "1",
            "PAYERBOT_ARTIFACTS_DIR": str(tmp_path / "art"),
            "HOME": str(tmp_path),
        }
        proc = subprocess.Popen(
            [sys.executable, "scheduler.py"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(scheduler.__file__).parent,
        )
        try:
            deadline = time.monotonic() + 120  # a bounded poll on the database, outside any browser
            while services.queue.counts()["by_state"]["done"] < 2:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "the scheduler did not finish the work in time"
                time.sleep(0.2)
            # a second scheduler on the same database refuses to start
            second = subprocess.run(
                [sys.executable, "scheduler.py"],
                env=env,
                capture_output=True,
                text=True,
                cwd=Path(scheduler.__file__).parent,
                timeout=60,
                check=False,
            )
            assert second.returncode == 2 and "another payerbot scheduler" in second.stderr
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        logs = [
            json.loads(line)
            for line in (proc.stderr.read() if proc.stderr else "").splitlines()
            if line.startswith("{")
        ]
        assert any(e["event"] == "scheduler stopped" for e in logs)
