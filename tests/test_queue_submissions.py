"""The exactly-once record: intent before the click, confirmation after it, reconciliation."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.clock import ManualClock
from bot.db import Submission
from bot.errors import AmbiguousSubmission, InvalidTransition, PortalTimeout, StaleLease
from bot.models import ItemState
from bot.queue import Batch, Evidence, LeasedItem, Queue, submission_reference
from bot.settings import Settings
from tests.queue_support import add_account, appeal, snapshot

EVIDENCE = Evidence("/ev/1.png", "a" * 64, "/ev/1.html", "b" * 64)


def _lease(queue: Queue, owner: str = "w1") -> tuple[Batch, LeasedItem]:
    batch = queue.lease_batch(owner, limit=1)
    assert batch is not None
    queue.mark_running(batch.items[0])
    return batch, batch.items[0]


def test_the_reference_is_stable_per_item_and_tied_to_its_key() -> None:
    ref = submission_reference(42, "appeal-1")

    assert re.fullmatch(r"PB-42-[0-9a-f]{6}", ref)
    assert submission_reference(42, "appeal-1") == ref
    assert submission_reference(42, "appeal-2") != ref


def test_leased_items_carry_the_same_reference_on_every_attempt(
    engine: Engine, queue: Queue, clock: ManualClock, settings: Settings
) -> None:
    add_account(engine, "acct-1")
    queue.enqueue([appeal(1)])
    batch, first = _lease(queue)
    queue.fail(first, PortalTimeout())
    queue.release(batch)
    clock.advance(settings.retry_max_seconds + 1)

    _, second = _lease(queue)

    assert second.attempt == 2 and second.reference == first.reference


def test_confirm_records_the_confirmation_and_evidence_and_completes(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")
    item_id = queue.enqueue([appeal(1)]).queued[0]
    _, item = _lease(queue)

    submission_id = queue.begin_submission(item, item.reference)
    pending = queue.pending_submission(item_id)
    queue.confirm_submission(
        item, submission_id=submission_id, confirmation_id="MAP-778812", via="click", evidence=EVIDENCE
    )

    assert pending is not None and pending.id == submission_id and pending.reference == item.reference
    assert pending.attempt == 1 and pending.lease_token == item.token
    assert queue.pending_submission(item_id) is None
    view = queue.get(item_id)
    assert view.state is ItemState.DONE and view.confirmation_id == "MAP-778812"
    assert view.submission_reference == item.reference
    (record,) = view.submissions
    assert record.state == "confirmed" and record.via == "click" and record.evidence == EVIDENCE


def test_begin_submission_is_refused_when_the_lease_is_about_to_expire(
    engine: Engine, queue: Queue, clock: ManualClock, settings: Settings
) -> None:
    add_account(engine, "acct-1")
    item_id = queue.enqueue([appeal(1)]).queued[0]
    _, item = _lease(queue)
    clock.advance(settings.lease_seconds - 9)  # 9 s left: inside the 10 s safety margin
    before = snapshot(engine)

    with pytest.raises(StaleLease, match="expires within"):
        queue.begin_submission(item, item.reference)

    assert snapshot(engine) == before
    assert queue.pending_submission(item_id) is None


def test_a_heartbeat_makes_room_for_the_submit_again(
    engine: Engine, queue: Queue, clock: ManualClock, settings: Settings
) -> None:
    add_account(engine, "acct-1")
    queue.enqueue([appeal(1)])
    batch, item = _lease(queue)
    clock.advance(settings.lease_seconds - 9)

    assert queue.heartbeat(batch)
    assert queue.begin_submission(item, item.reference) > 0


def test_a_stale_worker_cannot_begin_or_confirm_a_submission(
    engine: Engine, queue: Queue, clock: ManualClock, settings: Settings
) -> None:
    add_account(engine, "acct-1")
    item_id = queue.enqueue([appeal(1)]).queued[0]
    _, old = _lease(queue, "w-old")
    submission_id = queue.begin_submission(old, old.reference)
    clock.advance(settings.lease_seconds + 1)
    queue.reap()
    before = snapshot(engine)

    with pytest.raises(StaleLease):
        queue.confirm_submission(
            old, submission_id=submission_id, confirmation_id="X", via="click", evidence=None
        )
    with pytest.raises(StaleLease):
        queue.begin_submission(old, old.reference)

    assert snapshot(engine) == before
    assert queue.pending_submission(item_id) is not None


def test_the_next_worker_finds_the_open_submission_and_confirms_it_from_history(
    engine: Engine, queue: Queue, clock: ManualClock, settings: Settings
) -> None:
    add_account(engine, "acct-1")
    item_id = queue.enqueue([appeal(1)]).queued[0]
    _, old = _lease(queue, "w-old")
    submission_id = queue.begin_submission(old, old.reference)
    clock.advance(settings.lease_seconds + 1)  # the worker died after (or during) its click

    _, new = _lease(queue, "w-new")
    pending = queue.pending_submission(new.id)
    assert pending is not None and pending.id == submission_id and pending.reference == new.reference
    queue.confirm_submission(
        new, submission_id=pending.id, confirmation_id="MAP-1", via="history", evidence=None
    )

    view = queue.get(item_id)
    assert view.state is ItemState.DONE and view.confirmation_id == "MAP-1"
    assert view.submissions[0].via == "history"


def test_a_second_submit_is_refused_while_one_is_unreconciled(
    engine: Engine, queue: Queue, clock: ManualClock, settings: Settings
) -> None:
    add_account(engine, "acct-1")
    queue.enqueue([appeal(1)])
    _, old = _lease(queue, "w-old")
    queue.begin_submission(old, old.reference)
    clock.advance(settings.lease_seconds + 1)
    _, new = _lease(queue, "w-new")

    with pytest.raises(AmbiguousSubmission, match="unconfirmed"):
        queue.begin_submission(new, new.reference)


def test_not_found_in_history_allows_exactly_one_resubmission(
    engine: Engine, queue: Queue, clock: ManualClock, settings: Settings
) -> None:
    add_account(engine, "acct-1")
    item_id = queue.enqueue([appeal(1)]).queued[0]
    _, old = _lease(queue, "w-old")
    first = queue.begin_submission(old, old.reference)
    clock.advance(settings.lease_seconds + 1)
    _, new = _lease(queue, "w-new")

    queue.mark_submission_not_found(new, first)
    assert queue.pending_submission(item_id) is None
    with pytest.raises(InvalidTransition, match="already not_found"):
        queue.mark_submission_not_found(new, first)
    second = queue.begin_submission(new, new.reference)
    queue.confirm_submission(new, submission_id=second, confirmation_id="MAP-2", via="click", evidence=None)

    states = [(s.id, s.state, s.attempt) for s in queue.get(item_id).submissions]
    assert states == [(first, "not_found", 1), (second, "confirmed", 2)]


def test_a_deferral_waits_until_its_time_spends_no_attempt_and_says_why(
    engine: Engine, queue: Queue, clock: ManualClock, settings: Settings
) -> None:
    """A history that may still lag: the item waits for it without counting the look-up as an attempt."""
    add_account(engine, "acct-1")
    item_id = queue.enqueue([appeal(1)]).queued[0]
    batch, old = _lease(queue, "w-old")
    queue.begin_submission(old, old.reference)
    queue.fail(old, PortalTimeout())
    queue.release(batch)
    clock.advance(settings.retry_max_seconds + 1)
    batch, new = _lease(queue, "w-new")
    assert new.attempt == 2
    until = clock.now() + timedelta(minutes=2)

    queue.defer(new, until=until, reason="not yet in the portal's history")
    queue.release(batch)

    view = queue.get(item_id)
    assert (view.state, view.attempts, view.not_before) == (ItemState.RETRY_WAIT, 1, until)
    assert view.lease_owner is None and view.finished_at is None
    assert queue.pending_submission(item_id) is not None  # still to reconcile
    last = queue.history(item_id)[-1]
    assert (last.from_state, last.to_state, last.attempt) == ("running", "retry_wait", 2)
    assert last.detail == "not yet in the portal's history (no attempt spent)"
    assert queue.lease_batch("w-early") is None  # not due before its time
    clock.advance(120)
    batch, again = _lease(queue, "w-later")
    assert again.attempt == 2  # the same attempt as the one that waited


def test_a_stale_worker_cannot_defer(
    engine: Engine, queue: Queue, clock: ManualClock, settings: Settings
) -> None:
    add_account(engine, "acct-1")
    queue.enqueue([appeal(1)])
    _, old = _lease(queue, "w-old")
    queue.begin_submission(old, old.reference)
    clock.advance(settings.lease_seconds + 1)
    queue.reap()
    before = snapshot(engine)

    with pytest.raises(StaleLease):
        queue.defer(old, until=clock.now() + timedelta(minutes=2), reason="not yet in the history")

    assert snapshot(engine) == before


def test_the_database_itself_allows_one_open_submission_per_item(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")
    item_id = queue.enqueue([appeal(1)]).queued[0]
    _, item = _lease(queue)
    queue.begin_submission(item, item.reference)

    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            sa.insert(Submission.__table__).values(
                item_id=item_id,
                attempt=9,
                lease_token=item.token,
                reference="PB-x",
                state="submitting",
                started_at=queue.clock.now(),
            )
        )


def test_begin_submission_starts_an_item_that_was_only_leased(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")
    item_id = queue.enqueue([appeal(1)]).queued[0]
    batch = queue.lease_batch("w1")
    assert batch is not None

    queue.begin_submission(batch.items[0], batch.items[0].reference)

    view = queue.get(item_id)
    assert view.state is ItemState.RUNNING and view.attempts == 1


def test_cancel_is_refused_while_a_submission_may_have_reached_the_portal(
    engine: Engine, queue: Queue
) -> None:
    add_account(engine, "acct-1")
    item_id = queue.enqueue([appeal(1)]).queued[0]
    _, item = _lease(queue)
    queue.begin_submission(item, item.reference)

    with pytest.raises(InvalidTransition, match="unconfirmed submission"):
        queue.cancel(item_id)


def test_operator_not_submitted_retry_closes_the_open_submission(
    engine: Engine, queue: Queue, clock: ManualClock, settings: Settings
) -> None:
    add_account(engine, "acct-1")
    item_id = queue.enqueue([appeal(1)]).queued[0]
    _, item = _lease(queue)
    submission_id = queue.begin_submission(item, item.reference)
    queue.fail(item, AmbiguousSubmission())

    queue.retry(item_id, actor="ops", not_submitted=True)

    assert queue.pending_submission(item_id) is None
    assert queue.get(item_id).submissions[0].state == "not_found"
    assert queue.get(item_id).submissions[0].id == submission_id


def test_plain_retry_keeps_the_open_submission_for_reconciliation(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")
    item_id = queue.enqueue([appeal(1)]).queued[0]
    _, item = _lease(queue)
    queue.begin_submission(item, item.reference)
    queue.fail(item, AmbiguousSubmission())

    queue.retry(item_id)

    assert queue.pending_submission(item_id) is not None


def test_confirm_rejects_an_unknown_via(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")
    queue.enqueue([appeal(1)])
    _, item = _lease(queue)
    submission_id = queue.begin_submission(item, item.reference)

    with pytest.raises(ValueError, match="via"):
        queue.confirm_submission(
            item, submission_id=submission_id, confirmation_id="X", via="guess", evidence=None
        )
