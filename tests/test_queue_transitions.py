"""Outcomes of a run: done, retry_wait with backoff and jitter, failed, needs_human; operator actions."""

from __future__ import annotations

import random

import pytest
from sqlalchemy.engine import Engine

from bot.clock import ManualClock
from bot.errors import (
    CaptchaShown,
    InvalidTransition,
    NotFound,
    NotFoundOnPortal,
    PortalServerError,
    PortalTimeout,
    StaleLease,
)
from bot.models import ItemState
from bot.queue import Batch, LeasedItem, Queue
from bot.queue.retry import RetryPolicy
from bot.settings import Settings
from portals import check_request
from tests.queue_support import add_account, claim, state_of


def _lease(queue: Queue) -> tuple[Batch, LeasedItem]:
    batch = queue.lease_batch("w1", limit=1)
    assert batch is not None
    queue.mark_running(batch.items[0])
    return batch, batch.items[0]


def _lease_one(queue: Queue) -> LeasedItem:
    return _lease(queue)[1]


def test_complete_stores_the_status_and_result(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")
    item_id = queue.enqueue([claim(1)]).queued[0]
    item = _lease_one(queue)

    queue.complete(item, canonical_status="finalized_paid", result={"paid_amount": "12.50"})

    view = queue.get(item_id)
    assert view.state is ItemState.DONE
    assert view.canonical_status == "finalized_paid"
    assert view.result == {"paid_amount": "12.50"}
    assert view.attempts == 1 and view.finished_at is not None
    assert view.lease_owner is None


def test_a_transient_error_waits_with_jittered_backoff_within_bounds(
    engine: Engine, queue: Queue, clock: ManualClock, settings: Settings
) -> None:
    add_account(engine, "acct-1")
    item_id = queue.enqueue([claim(1)]).queued[0]
    item = _lease_one(queue)
    failed_at = clock.now()

    assert queue.fail(item, PortalServerError("the portal answered 503")) is ItemState.RETRY_WAIT

    view = queue.get(item_id)
    assert view.state is ItemState.RETRY_WAIT
    assert view.last_error == "the portal answered 503" and view.last_error_kind == "PortalServerError"
    wait = (view.not_before - failed_at).total_seconds()
    assert 0 <= wait <= settings.retry_base_seconds  # first retry: full jitter under base * 2**0


def test_backoff_caps_grow_exponentially_up_to_the_maximum() -> None:
    policy = RetryPolicy(base_seconds=30, max_seconds=600, rng=random.Random(1))

    assert [policy.cap(n) for n in range(1, 7)] == [30, 60, 120, 240, 480, 600]
    draws = [policy.delay(4) for _ in range(500)]
    assert all(0 <= d <= 240 for d in draws)
    assert max(draws) > 200 and min(draws) < 40  # spread over the whole range, not a fixed wait
    assert policy.cap(10_000) == 600  # no overflow on absurd attempt numbers


def test_jitter_comes_from_the_injected_rng(engine: Engine, settings: Settings, clock: ManualClock) -> None:
    add_account(engine, "acct-1")
    waits = []
    for seed in (3, 3, 4):
        q = Queue(engine, settings, clock=clock, rng=random.Random(seed), check=check_request)
        item_id = q.enqueue([claim(seed * 100 + len(waits))]).queued[0]
        batch = q.lease_batch("w", limit=10)
        assert batch is not None
        item = next(i for i in batch.items if i.id == item_id)
        q.fail(item, PortalTimeout())
        q.release(batch)
        waits.append(q.get(item_id).not_before - clock.now())

    assert waits[0] == waits[1] != waits[2]


def test_retries_stop_at_max_attempts_and_the_item_fails(
    engine: Engine, queue: Queue, clock: ManualClock, settings: Settings
) -> None:
    add_account(engine, "acct-1")
    item_id = queue.enqueue([claim(1)]).queued[0]
    states = []
    for attempt in range(1, settings.max_attempts_status + 1):
        batch, item = _lease(queue)
        assert item.attempt == attempt
        states.append(queue.fail(item, PortalTimeout()))
        queue.release(batch)
        clock.advance(settings.retry_max_seconds + 1)

    assert states == [ItemState.RETRY_WAIT, ItemState.RETRY_WAIT, ItemState.FAILED]
    view = queue.get(item_id)
    assert view.state is ItemState.FAILED and view.attempts == settings.max_attempts_status
    assert "out of attempts" in (view.last_error or "")
    assert queue.lease_batch("w1") is None


def test_retry_wait_goes_back_to_queued_when_due(engine: Engine, queue: Queue, clock: ManualClock) -> None:
    add_account(engine, "acct-1")
    item_id = queue.enqueue([claim(1)]).queued[0]
    batch, item = _lease(queue)
    queue.fail(item, PortalTimeout())
    queue.release(batch)
    due = queue.get(item_id).not_before

    clock.advance((due - clock.now()).total_seconds() + 0.001)
    queue.reap()

    assert state_of(engine, item_id) == "queued"
    assert [(e.from_state, e.to_state) for e in queue.history(item_id)][-1] == ("retry_wait", "queued")
    again = _lease_one(queue)
    assert again.id == item_id and again.attempt == 2


def test_a_terminal_error_fails_with_the_portals_message(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")
    item_id = queue.enqueue([claim(1)]).queued[0]
    item = _lease_one(queue)

    state = queue.fail(item, NotFoundOnPortal("Claim not found in Meridian records"))

    assert state is ItemState.FAILED
    view = queue.get(item_id)
    assert view.last_error == "Claim not found in Meridian records"
    assert view.last_error_kind == "NotFoundOnPortal"


def test_a_human_error_goes_to_needs_human_with_the_reason(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")
    item_id = queue.enqueue([claim(1)]).queued[0]
    item = _lease_one(queue)

    assert queue.fail(item, CaptchaShown()) is ItemState.NEEDS_HUMAN

    view = queue.get(item_id)
    assert view.state is ItemState.NEEDS_HUMAN and view.last_error_kind == "CaptchaShown"
    assert "CAPTCHA" in (view.last_error or "")


def test_a_foreign_exception_is_retried_without_its_text(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")
    item_id = queue.enqueue([claim(1)]).queued[0]
    item = _lease_one(queue)

    state = queue.fail(item, RuntimeError("member Jane Doe 1980-01-01"))

    assert state is ItemState.RETRY_WAIT
    assert "Jane" not in (queue.get(item_id).last_error or "")


def test_finished_items_refuse_further_writes(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")
    item_id = queue.enqueue([claim(1)]).queued[0]
    item = _lease_one(queue)
    queue.complete(item, canonical_status="pending", result={})

    with pytest.raises(StaleLease):
        queue.complete(item, canonical_status="finalized_paid", result={})
    with pytest.raises(StaleLease):
        queue.fail(item, PortalTimeout())
    assert queue.get(item_id).canonical_status == "pending"


def test_failing_an_unstarted_item_counts_its_attempt(
    engine: Engine, queue: Queue, settings: Settings
) -> None:
    add_account(engine, "acct-1")
    item_id = queue.enqueue([claim(1)]).queued[0]
    batch = queue.lease_batch("w1")
    assert batch is not None

    queue.fail(batch.items[0], PortalTimeout())  # e.g. the batch's login timed out

    assert queue.get(item_id).attempts == 1


def test_hand_account_to_human_moves_only_waiting_items_of_that_account(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")
    add_account(engine, "acct-2")
    waiting = queue.enqueue([claim(1), claim(2)]).queued
    other = queue.enqueue([claim(3, "acct-2")]).queued[0]

    moved = queue.hand_account_to_human("meridian", "acct-1", "login rejected: account disabled")

    assert moved == 2
    assert [queue.get(i).state for i in waiting] == [ItemState.NEEDS_HUMAN] * 2
    assert queue.get(waiting[0]).last_error == "login rejected: account disabled"
    assert queue.get(other).state is ItemState.QUEUED


def test_operator_retry_requeues_failed_and_needs_human_items(
    engine: Engine, queue: Queue, settings: Settings
) -> None:
    add_account(engine, "acct-1")
    item_id = queue.enqueue([claim(1)]).queued[0]
    queue.fail(_lease_one(queue), CaptchaShown())

    queue.retry(item_id, actor="ops@example")

    view = queue.get(item_id)
    assert view.state is ItemState.QUEUED and view.attempts == 0
    assert view.history[-1].worker == "ops@example"
    with pytest.raises(InvalidTransition, match="only needs_human, failed, rejected"):
        queue.retry(item_id)


def test_operator_cancel_fences_off_the_worker_holding_the_item(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")
    item_id = queue.enqueue([claim(1)]).queued[0]
    item = _lease_one(queue)

    queue.cancel(item_id)

    assert queue.get(item_id).state is ItemState.CANCELLED
    with pytest.raises(StaleLease):
        queue.complete(item, canonical_status="pending", result={})
    with pytest.raises(InvalidTransition):
        queue.cancel(item_id)
    with pytest.raises(NotFound):
        queue.cancel(999_999)


def test_counts_by_state_payer_and_kind(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")
    queue.enqueue([claim(n) for n in range(4)])
    queue.complete(_lease_one(queue), canonical_status="pending", result={})

    counts = queue.counts()

    assert counts["total"] == 4
    assert counts["by_state"]["queued"] == 3 and counts["by_state"]["done"] == 1
    assert counts["by_state"]["failed"] == 0
    assert counts["by_payer"] == {"meridian": {"queued": 3, "done": 1}}
    assert counts["by_kind"] == {"claim_status": {"queued": 3, "done": 1}}


def test_list_filters_by_state_and_payer(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")
    ids = queue.enqueue([claim(n) for n in range(3)]).queued
    queue.complete(_lease_one(queue), canonical_status="pending", result={})

    assert [s.id for s in queue.list(state="queued")] == ids[1:]
    assert [s.id for s in queue.list(payer="meridian")] == ids
    assert queue.list(payer="nobody") == []
    assert len(queue.list(limit=2)) == 2
