"""Leases per (payer, account): batching, exclusivity, fencing, heartbeat, release, reaper."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.clock import ManualClock
from bot.db import Account, ItemEvent
from bot.errors import PortalTimeout, StaleLease
from bot.models import ItemState
from bot.queue import Queue
from bot.settings import Settings
from tests.queue_support import add_account, claim, snapshot, state_of


def test_a_batch_holds_up_to_k_items_of_one_account(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")
    add_account(engine, "acct-2")
    queue.enqueue([claim(n, "acct-1") for n in range(7)] + [claim(n, "acct-2") for n in range(3)])

    batch = queue.lease_batch("w1")

    assert batch is not None
    assert len(batch.items) == 5  # settings.batch_size
    assert {(i.payer, i.account) for i in batch.items} == {(batch.payer, batch.account)}
    assert all(i.token == batch.token and i.attempt == 1 for i in batch.items)
    assert all(state_of(engine, i.id) == "leased" for i in batch.items)


def test_a_second_worker_gets_another_account_never_the_same(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")
    add_account(engine, "acct-2")
    queue.enqueue([claim(n, "acct-1") for n in range(7)] + [claim(n, "acct-2") for n in range(3)])

    first = queue.lease_batch("w1")
    second = queue.lease_batch("w2")
    third = queue.lease_batch("w3")

    assert first is not None and second is not None
    assert first.account != second.account
    assert third is None  # both accounts are held, though acct-1 still has due items
    ids_first = {i.id for i in first.items}
    assert ids_first.isdisjoint(i.id for i in second.items)


def test_disabled_accounts_are_never_leased(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-off", enabled=False)
    queue.enqueue([claim(1, "acct-off")])

    assert queue.lease_batch("w1") is None


def test_higher_priority_items_lease_first_then_oldest(
    engine: Engine, queue: Queue, clock: ManualClock
) -> None:
    add_account(engine, "acct-1")
    low = queue.enqueue([claim(1, priority=0)]).queued[0]
    clock.advance(1)
    high_new = queue.enqueue([claim(2, priority=5)]).queued[0]
    clock.advance(1)
    mid = queue.enqueue([claim(3, priority=1)]).queued[0]

    batch = queue.lease_batch("w1", limit=2)

    assert batch is not None
    assert [i.id for i in batch.items] == [high_new, mid]
    assert low not in {i.id for i in batch.items}


def test_account_with_highest_priority_work_is_leased_first(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")
    add_account(engine, "acct-2")
    queue.enqueue([claim(1, "acct-1"), claim(2, "acct-2", priority=9)])

    batch = queue.lease_batch("w1")

    assert batch is not None and batch.account == "acct-2"


def test_accounts_take_turns_when_priorities_tie(engine: Engine, queue: Queue, clock: ManualClock) -> None:
    add_account(engine, "acct-1")
    add_account(engine, "acct-2")
    queue.enqueue([claim(n, "acct-1") for n in range(20)] + [claim(n, "acct-2") for n in range(20)])

    seen = []
    for _ in range(4):
        batch = queue.lease_batch("w1", limit=1)
        assert batch is not None
        seen.append(batch.account)
        queue.complete(batch.items[0], canonical_status="pending", result={})
        queue.release(batch)
        clock.advance(1)

    assert seen == ["acct-1", "acct-2", "acct-1", "acct-2"]


def test_the_token_grows_with_every_lease_of_an_account(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")
    queue.enqueue([claim(n) for n in range(3)])

    first = queue.lease_batch("w1", limit=1)
    assert first is not None
    queue.release(first)
    second = queue.lease_batch("w1", limit=1)

    assert second is not None and second.token == first.token + 1


def test_stale_token_writes_are_refused_and_change_nothing(
    engine: Engine, queue: Queue, clock: ManualClock, settings: Settings
) -> None:
    add_account(engine, "acct-1")
    queue.enqueue([claim(1)])
    old = queue.lease_batch("w-old")
    assert old is not None
    queue.mark_running(old.items[0])
    clock.advance(settings.lease_seconds + 1)
    new = queue.lease_batch("w-new")  # takes the expired account over, bumping the token
    assert new is not None and new.token > old.token
    before = snapshot(engine)

    stale = old.items[0]
    with pytest.raises(StaleLease):
        queue.complete(stale, canonical_status="paid", result={"x": 1})
    with pytest.raises(StaleLease):
        queue.fail(stale, PortalTimeout())
    with pytest.raises(StaleLease):
        queue.mark_running(stale)
    with pytest.raises(StaleLease):
        queue.begin_submission(stale, stale.reference)
    assert queue.heartbeat(old) is False

    assert snapshot(engine) == before


def test_heartbeat_extends_the_account_and_item_leases(
    engine: Engine, queue: Queue, clock: ManualClock, settings: Settings
) -> None:
    add_account(engine, "acct-1")
    queue.enqueue([claim(1)])
    batch = queue.lease_batch("w1")
    assert batch is not None
    first_expiry = batch.expires_at

    clock.advance(settings.lease_seconds - 5)
    assert queue.heartbeat(batch) is True
    assert batch.expires_at > first_expiry
    clock.advance(30)  # past the first expiry, inside the extended one

    assert queue.reap() == 0
    assert state_of(engine, batch.items[0].id) == "leased"
    assert queue.get(batch.items[0].id).lease_expires_at == batch.expires_at


def test_reaper_returns_expired_items_and_clears_the_account(
    engine: Engine, queue: Queue, clock: ManualClock, settings: Settings
) -> None:
    add_account(engine, "acct-1")
    ids = queue.enqueue([claim(1), claim(2)]).queued
    batch = queue.lease_batch("w1")
    assert batch is not None
    queue.mark_running(batch.items[0])

    clock.advance(settings.lease_seconds + 1)
    assert queue.reap() == 2

    assert [state_of(engine, i) for i in ids] == ["queued", "queued"]
    assert queue.get(ids[0]).attempts == 1  # it started: the attempt counted
    assert queue.get(ids[1]).attempts == 0  # it never started
    with engine.connect() as conn:
        owner = conn.execute(sa.select(Account.lease_owner).where(Account.account == "acct-1")).scalar()
    assert owner is None
    assert queue.heartbeat(batch) is False
    again = queue.lease_batch("w2")
    assert again is not None and {i.id for i in again.items} == set(ids)


def test_reaper_fails_a_started_item_that_has_no_attempts_left(
    engine: Engine, queue: Queue, clock: ManualClock, settings: Settings
) -> None:
    add_account(engine, "acct-1")
    item_id = queue.enqueue([claim(1)]).queued[0]
    for _ in range(settings.max_attempts_status):
        batch = queue.lease_batch("w1")
        assert batch is not None
        queue.mark_running(batch.items[0])
        clock.advance(settings.lease_seconds + 1)
        queue.reap()

    view = queue.get(item_id)
    assert view.state is ItemState.FAILED
    assert view.attempts == settings.max_attempts_status
    assert "no attempts left" in (view.last_error or "")


def test_release_returns_unstarted_items_and_frees_the_account(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")
    queue.enqueue([claim(n) for n in range(3)])
    batch = queue.lease_batch("w1")
    assert batch is not None
    done, *rest = batch.items
    queue.mark_running(done)
    queue.complete(done, canonical_status="pending", result={"s": "ok"})

    queue.release(batch)

    assert state_of(engine, done.id) == "done"
    assert all(state_of(engine, i.id) == "queued" for i in rest)
    assert all(queue.get(i.id).attempts == 0 for i in rest)
    other = queue.lease_batch("w2")
    assert other is not None and other.account == "acct-1"


def test_each_transition_is_written_to_item_events(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")
    item_id = queue.enqueue([claim(1)]).queued[0]
    batch = queue.lease_batch("w1")
    assert batch is not None
    queue.mark_running(batch.items[0])
    queue.complete(batch.items[0], canonical_status="finalized_paid", result={"paid": "10.00"})

    history = queue.history(item_id)

    assert [(e.from_state, e.to_state) for e in history] == [
        (None, "queued"),
        ("queued", "leased"),
        ("leased", "running"),
        ("running", "done"),
    ]
    assert history[1].worker == "w1" and history[2].attempt == 1
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(ItemEvent)).scalar()
    assert total == 4


def test_lease_takes_over_an_expired_account_without_waiting_for_the_reaper(
    engine: Engine, queue: Queue, clock: ManualClock, settings: Settings
) -> None:
    add_account(engine, "acct-1")
    ids = queue.enqueue([claim(1), claim(2)]).queued
    old = queue.lease_batch("w-old")
    assert old is not None
    clock.advance(settings.lease_seconds + 1)

    new = queue.lease_batch("w-new")

    assert new is not None and {i.id for i in new.items} == set(ids)
    assert all(i.token == new.token for i in new.items)
    assert any("expired" in (e.detail or "") for e in queue.history(ids[0]))


def test_future_items_are_not_due(engine: Engine, queue: Queue, clock: ManualClock) -> None:
    add_account(engine, "acct-1")
    queue.enqueue([claim(1)])
    batch = queue.lease_batch("w1")
    assert batch is not None
    queue.mark_running(batch.items[0])
    queue.fail(batch.items[0], PortalTimeout())
    queue.release(batch)

    assert queue.lease_batch("w1") is None
    clock.advance(601)  # past retry_max_seconds
    assert queue.lease_batch("w1") is not None


def test_heartbeats_from_a_background_thread_run_beside_the_workers_writes(
    engine: Engine, queue: Queue, clock: ManualClock
) -> None:
    add_account(engine, "acct-1")
    queue.enqueue([claim(n) for n in range(5)])
    batch = queue.lease_batch("w1")
    assert batch is not None
    beats: list[bool] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.is_set() and len(beats) < 10_000:
                beats.append(queue.heartbeat(batch))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=beat)
    thread.start()
    try:
        for item in batch.items:
            queue.mark_running(item)
            queue.complete(item, canonical_status="pending", result={})
    finally:
        stop.set()
        thread.join(30)

    assert not errors and beats and all(beats)
    assert [queue.get(i.id).state for i in batch.items] == [ItemState.DONE] * 5
