"""Filing deadlines: per payer and level, days from the denial date; never missed, worked first.

Intake refuses an appeal already past its deadline (naming the date), an approval in the future
(beyond 5 minutes of clock skew) or before the denial; the deadline is stored on the item; the lease
works appeals earliest deadline first within a priority level (so ahead of sweeps, queued at -1);
`payerbot queue list --due-within` and `payerbot status` show those falling due, a person's too.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

import portals
from bot.cli import app
from bot.clock import ManualClock
from bot.db import Base, WorkItem
from bot.errors import ConfigError
from bot.models import AppealLevel, AppealRequest, ItemState, NewItem, WorkKind
from bot.queue import Queue
from bot.queue.intake import filing_deadline
from bot.settings import Settings, load_settings
from portals import check_request
from scenarios.report import collect, render
from tests.queue_support import PAYER, add_account, appeal_payload, claim

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
MERIDIAN_FIRST_LEVEL = portals.get_portal("meridian").filing_deadline_days[AppealLevel.FIRST_LEVEL]


@pytest.fixture
def now_clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def dq(engine: Engine, settings: Settings, now_clock: ManualClock) -> Queue:
    """A queue with the payers' own deadlines, as ``bot.services`` builds it."""
    return Queue(
        engine,
        settings,
        clock=now_clock,
        rng=random.Random(3),
        check=check_request,
        deadlines=portals.filing_deadline_days,
    )


def _appeal(
    n: int,
    *,
    denied: date,
    approved: datetime | None = None,
    account: str = "acct-1",
    priority: int = 0,
    **changes: Any,
) -> NewItem:
    payload = appeal_payload(n)
    payload.update(
        denial_date=denied.isoformat(),
        approved_at=(approved or NOW - timedelta(hours=1)).isoformat(),
        **changes,
    )
    return NewItem(
        kind=WorkKind.APPEAL_SUBMISSION,
        payer=PAYER,
        account=account,
        payload=payload,
        idempotency_key=f"appeal-{account}-{n}",
        priority=priority,
    )


def _deadline_of(engine: Engine, item_id: int) -> date | None:
    with engine.connect() as conn:
        return conn.execute(sa.select(WorkItem.deadline).where(WorkItem.id == item_id)).scalar_one()


# -- the rule and its configuration ------------------------------------------------------------------


def test_every_payer_declares_a_deadline_for_every_level() -> None:
    for payer, portal in portals.registry().items():
        assert set(portal.filing_deadline_days) == set(AppealLevel), payer
        assert all(0 < days <= 365 for days in portal.filing_deadline_days.values()), payer


def test_configuration_overrides_a_payers_days_per_level() -> None:
    request = AppealRequest.model_validate({**appeal_payload(), "denial_date": "2026-01-10"})
    settings = Settings(filing_deadlines="meridian.first_level=30, meridian.second_level=10")
    assert filing_deadline("meridian", request, settings, portals.filing_deadline_days) == date(2026, 2, 9)
    plain = Settings()
    expected = date(2026, 1, 10) + timedelta(days=MERIDIAN_FIRST_LEVEL)
    assert filing_deadline("meridian", request, plain, portals.filing_deadline_days) == expected
    no_denial = AppealRequest.model_validate(appeal_payload() | {"denial_date": None})
    assert filing_deadline("meridian", no_denial, plain, portals.filing_deadline_days) is None


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("meridian.first=90", "key 'meridian.first': unknown appeal level 'first'"),
        ("meridian.first_level=ninety", "key 'meridian.first_level': days must be a whole number"),
        ("meridian.first_level=0", "key 'meridian.first_level': days must be between 1 and 3650"),
        ("first_level=90", "key 'first_level' must be PAYER.LEVEL"),
        ("meridian.first_level", "entry 'meridian.first_level' needs '=DAYS'"),
    ],
)
def test_a_bad_deadline_setting_names_its_key(value: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(filing_deadlines=value)
    assert "PAYERBOT_FILING_DEADLINES" in caught.value.message and named in caught.value.message


# -- intake -----------------------------------------------------------------------------------------


def test_an_appeal_in_time_is_queued_with_its_deadline(dq: Queue, engine: Engine) -> None:
    add_account(engine, "acct-1")
    denied = date(2026, 5, 1)
    [item_id] = dq.enqueue([_appeal(1, denied=denied)]).queued
    assert _deadline_of(engine, item_id) == denied + timedelta(days=MERIDIAN_FIRST_LEVEL)
    [status_id] = dq.enqueue([claim(9)]).queued
    assert _deadline_of(engine, status_id) is None


def test_an_appeal_past_its_deadline_is_refused_naming_the_date(dq: Queue, engine: Engine) -> None:
    add_account(engine, "acct-1")
    last_day = NOW.date() - timedelta(days=1)
    late = _appeal(
        1, denied=last_day - timedelta(days=MERIDIAN_FIRST_LEVEL), approved=NOW - timedelta(days=3)
    )
    report = dq.enqueue([late])
    assert report.queued == [] and [(r.field, r.message) for r in report.rejected] == [
        (
            "payload.denial_date",
            f"payload.denial_date: the filing deadline of a first_level appeal passed on "
            f"{last_day.isoformat()}; the payer no longer takes it",
        )
    ]
    # the deadline's own day is still in time
    on_the_day = _appeal(2, denied=NOW.date() - timedelta(days=MERIDIAN_FIRST_LEVEL), approved=NOW)
    assert dq.enqueue([on_the_day]).queued


def test_configuration_shortens_the_deadline_at_intake(
    engine: Engine, settings: Settings, now_clock: ManualClock
) -> None:
    add_account(engine, "acct-1")
    configured = settings.model_copy(update={"filing_deadlines": {"meridian.first_level": 10}})
    queue = Queue(
        engine, configured, clock=now_clock, check=check_request, deadlines=portals.filing_deadline_days
    )
    report = queue.enqueue([_appeal(1, denied=NOW.date() - timedelta(days=20))])
    assert [r.field for r in report.rejected] == ["payload.denial_date"]
    assert (NOW.date() - timedelta(days=10)).isoformat() in report.rejected[0].message


def test_an_approval_in_the_future_or_before_the_denial_is_refused(dq: Queue, engine: Engine) -> None:
    add_account(engine, "acct-1")
    denied = date(2026, 5, 20)
    rows = [
        _appeal(1, denied=denied, approved=NOW + timedelta(minutes=6)),  # beyond the clock skew
        _appeal(2, denied=denied, approved=datetime(2099, 1, 1, tzinfo=UTC)),
        _appeal(3, denied=denied, approved=datetime(2026, 5, 19, 23, tzinfo=UTC)),  # the day before
        _appeal(4, denied=denied, approved=NOW + timedelta(minutes=4)),  # another clock, a little ahead
        _appeal(5, denied=denied, approved=datetime(2026, 5, 20, 8, tzinfo=UTC)),  # the denial's day
    ]
    report = dq.enqueue(rows)
    assert [(r.index, r.field) for r in report.rejected] == [
        (0, "payload.approved_at"),
        (1, "payload.approved_at"),
        (2, "payload.approved_at"),
    ]
    assert "in the future" in report.rejected[0].message
    assert "before payload.denial_date" in report.rejected[2].message
    assert len(report.queued) == 2


# -- the lease order ---------------------------------------------------------------------------------


def _lease_order(queue: Queue, *, batch: int) -> list[list[int]]:
    order = []
    while (got := queue.lease_batch("w", limit=batch)) is not None:
        order.append([i.id for i in got.items])
        for item in got.items:
            queue.mark_running(item)
            queue.complete(item, canonical_status="x", result={})
        queue.release(got)
    return order


def test_appeals_are_worked_earliest_deadline_first_ahead_of_status_checks_and_sweeps(
    dq: Queue, engine: Engine
) -> None:
    add_account(engine, "acct-1")
    sweep = dq.enqueue([claim(1, key="sweep", priority=-1)]).queued
    fresh = dq.enqueue([claim(2, key="fresh")]).queued
    base = NOW.date() - timedelta(days=MERIDIAN_FIRST_LEVEL)
    late = dq.enqueue([_appeal(3, denied=base + timedelta(days=30))]).queued
    soon = dq.enqueue([_appeal(4, denied=base + timedelta(days=2))]).queued
    middle = dq.enqueue([_appeal(5, denied=base + timedelta(days=9))]).queued
    urgent_status = dq.enqueue([claim(6, key="urgent", priority=5)]).queued
    order = [i for batch in _lease_order(dq, batch=1) for i in batch]
    # priority first (5), then the appeals by deadline, then the status check by age, then the sweep
    assert order == urgent_status + soon + middle + late + fresh + sweep


def test_an_appeal_at_the_sweeps_priority_still_goes_before_them(dq: Queue, engine: Engine) -> None:
    add_account(engine, "acct-1")
    sweeps = dq.enqueue([claim(n, key=f"sweep-{n}", priority=-1) for n in range(1, 4)]).queued
    [appeal_id] = dq.enqueue([_appeal(9, denied=NOW.date() - timedelta(days=5), priority=-1)]).queued
    assert _lease_order(dq, batch=2) == [[appeal_id, sweeps[0]], [sweeps[1], sweeps[2]]]


def test_the_account_with_the_nearest_deadline_is_leased_first(dq: Queue, engine: Engine) -> None:
    for account in ("acct-a", "acct-b", "acct-c"):
        add_account(engine, account)
    dq.enqueue([claim(1, "acct-a")])
    dq.enqueue([_appeal(2, account="acct-b", denied=NOW.date() - timedelta(days=5))])
    dq.enqueue([_appeal(3, account="acct-c", denied=NOW.date() - timedelta(days=50))])
    picked = []
    while (got := dq.lease_batch("w", limit=5)) is not None:
        picked.append(got.account)
        for item in got.items:
            dq.mark_running(item)
            dq.complete(item, canonical_status="x", result={})
        dq.release(got)
    assert picked == ["acct-c", "acct-b", "acct-a"]


# -- what is falling due -----------------------------------------------------------------------------


def _set_state(engine: Engine, item_id: int, state: ItemState) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(WorkItem.__table__).where(WorkItem.id == item_id).values(state=state.value))


def test_list_due_within_shows_open_appeals_a_persons_too_nearest_first(dq: Queue, engine: Engine) -> None:
    add_account(engine, "acct-1")
    base = NOW.date() - timedelta(days=MERIDIAN_FIRST_LEVEL)
    ids = {
        name: dq.enqueue([_appeal(n, denied=base + timedelta(days=days))]).queued[0]
        for n, (name, days) in enumerate(
            [("in6", 6), ("in2", 2), ("human", 3), ("done", 1), ("cancelled", 1), ("in20", 20)], start=1
        )
    }
    _set_state(engine, ids["human"], ItemState.NEEDS_HUMAN)
    _set_state(engine, ids["done"], ItemState.DONE)
    _set_state(engine, ids["cancelled"], ItemState.CANCELLED)
    dq.enqueue([claim(50)])
    due = dq.list(due_within=timedelta(days=7))
    assert [r.id for r in due] == [ids["in2"], ids["human"], ids["in6"]]
    assert [r.deadline for r in due] == [NOW.date() + timedelta(days=d) for d in (2, 3, 6)]
    assert dq.counts()["appeals_due_7d"] == 3
    assert [r.id for r in dq.list(due_within=timedelta(days=30))][-1] == ids["in20"]


def test_the_cli_lists_and_counts_appeals_falling_due(
    cli: CliRunner, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYERBOT_DOCUMENTS_DIR", str(tmp_path / "documents"))
    add_account(engine, "acct-1")
    today = datetime.now(UTC)
    soon = today.date() - timedelta(days=MERIDIAN_FIRST_LEVEL - 3)  # due in 3 days
    later = today.date() - timedelta(days=MERIDIAN_FIRST_LEVEL - 40)
    lines = [
        json.dumps(json.loads(_appeal(n, denied=d, approved=today).model_dump_json()))
        for n, d in ((1, soon), (2, later))
    ]
    source = tmp_path / "appeals.jsonl"
    source.write_text("\n".join(lines) + "\n")
    assert cli.invoke(app, ["enqueue", str(source)]).exit_code == 0
    listed = cli.invoke(app, ["queue", "list", "--due-within", "7d", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [(r["id"], r["deadline"]) for r in rows] == [
        (1, (soon + timedelta(days=MERIDIAN_FIRST_LEVEL)).isoformat())
    ]
    assert len(json.loads(cli.invoke(app, ["queue", "list", "--due-within", "6w", "--json"]).output)) == 2
    bad = cli.invoke(app, ["queue", "list", "--due-within", "soon"])
    assert bad.exit_code == 2 and "--due-within" in bad.output
    status = cli.invoke(app, ["status"])
    assert "appeals due within 7 days" in status.output and status.output.rstrip().count(": 1") >= 1
    assert json.loads(cli.invoke(app, ["status", "--json"]).output)["appeals_due_7d"] == 1


# -- the schema --------------------------------------------------------------------------------------


def test_the_migrations_match_the_tables(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diff if "deadline" in repr(d)] == []


def test_the_report_lists_open_appeals_near_their_deadline_first(dq: Queue, engine: Engine) -> None:
    add_account(engine, "acct-1")
    meridian = MERIDIAN_FIRST_LEVEL
    near = NOW.date() - timedelta(days=meridian - 3)  # three days left
    far = NOW.date() - timedelta(days=meridian - 30)
    [soon, later] = dq.enqueue([_appeal(1, denied=near), _appeal(2, denied=far)]).queued
    data = collect(engine, NOW - timedelta(days=1), now=NOW)
    assert [i.id for i in data.due] == [soon]
    page = render(data)
    row = page[page.index('<table id="due">') :]
    assert f"<td>{soon}</td>" in row and f"<td>{later}</td>" not in row
    assert "<td class='n'>3</td>" in row  # days left
