"""Random interleavings of lease, heartbeat, run, complete, fail, release, expiry and reaping.

A Hypothesis state machine drives one queue through a ManualClock and checks, after every step:
items are never created or lost; an active item's lease is its account's current lease; waiting and
finished items hold no lease; a finished item never changes again; every item's last event is its
state; and a write with a stale token raises StaleLease and changes nothing.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy.engine import Engine

from bot.clock import ManualClock
from bot.db import Account, ItemEvent, Submission, WorkItem
from bot.errors import CaptchaShown, NotFoundOnPortal, PortalTimeout, StaleLease
from bot.models import FINAL_STATES
from bot.queue import Batch, LeasedItem, Queue
from bot.settings import Settings
from portals import check_request
from tests.queue_support import add_account, claim, snapshot

ACCOUNTS = ("acct-a", "acct-b")
ITEMS_PER_ACCOUNT = 4
LEASE_SECONDS = 60
ERRORS = (PortalTimeout(), NotFoundOnPortal(), CaptchaShown())


def _wipe(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in (ItemEvent, Submission, WorkItem, Account):
            conn.execute(sa.delete(table))


class QueueMachine(RuleBasedStateMachine):
    engine: Engine  # set by the test before running

    def __init__(self) -> None:
        super().__init__()
        _wipe(self.engine)
        self.clock = ManualClock()
        self.queue = Queue(
            self.engine,
            Settings(
                lease_seconds=LEASE_SECONDS,
                batch_size=3,
                max_attempts_status=2,
                retry_base_seconds=5,
                retry_max_seconds=20,
            ),
            clock=self.clock,
            rng=random.Random(0),
            check=check_request,
        )
        self.batches: list[Batch] = []
        self.final: dict[int, str] = {}
        self.total = 0

    @initialize()
    def fill(self) -> None:
        for account in ACCOUNTS:
            add_account(self.engine, account)
        rows = [claim(n, a) for a in ACCOUNTS for n in range(ITEMS_PER_ACCOUNT)]
        self.total = len(self.queue.enqueue(rows).queued)

    # -- helpers ----------------------------------------------------------------------------------

    def _items(self) -> dict[int, Any]:
        with self.engine.connect() as conn:
            return {r.id: r for r in conn.execute(sa.select(WorkItem.__table__))}

    def _current(self, item: LeasedItem) -> bool:
        row = self._items()[item.id]
        return row.lease_token == item.token and row.state in ("leased", "running")

    def _pick(self, data: st.DataObject) -> LeasedItem | None:
        held = [i for b in self.batches for i in b.items]
        return data.draw(st.sampled_from(held)) if held else None

    def _write(self, item: LeasedItem, call: Any) -> None:
        """Do a fenced write; a stale token must be refused with nothing changed."""
        current = self._current(item)
        before = snapshot(self.engine)
        if current:
            call()
        else:
            with pytest.raises(StaleLease):
                call()
            assert snapshot(self.engine) == before

    # -- rules ----------------------------------------------------------------------------------------

    @rule(worker=st.sampled_from(["w1", "w2", "w3"]))
    def lease(self, worker: str) -> None:
        batch = self.queue.lease_batch(worker)
        if batch is not None:
            assert 1 <= len(batch.items) <= 3
            assert {(i.payer, i.account, i.token) for i in batch.items} == {
                (batch.payer, batch.account, batch.token)
            }
            self.batches.append(batch)

    @rule()
    def leases_expire_and_other_workers_take_over(self) -> None:
        self.clock.advance(LEASE_SECONDS + 1)
        while (batch := self.queue.lease_batch("w-late")) is not None:
            self.batches.append(batch)

    @rule(data=st.data())
    def heartbeat(self, data: st.DataObject) -> None:
        if self.batches:
            batch = data.draw(st.sampled_from(self.batches))
            with self.engine.connect() as conn:
                acct = conn.execute(
                    sa.select(Account.lease_token, Account.lease_owner).where(
                        Account.account == batch.account
                    )
                ).one()
            held = acct.lease_token == batch.token and acct.lease_owner is not None
            assert self.queue.heartbeat(batch) is held

    @rule(data=st.data())
    def run(self, data: st.DataObject) -> None:
        item = self._pick(data)
        if item is not None:
            self._write(item, lambda: self.queue.mark_running(item))

    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        item = self._pick(data)
        if item is not None:
            self._write(item, lambda: self.queue.complete(item, canonical_status="pending", result={}))

    @rule(data=st.data(), error=st.sampled_from(ERRORS))
    def fail(self, data: st.DataObject, error: Exception) -> None:
        item = self._pick(data)
        if item is not None:
            self._write(item, lambda: self.queue.fail(item, error))  # type: ignore[arg-type]

    @rule(data=st.data(), action=st.sampled_from(["run", "complete", "fail"]))
    def write_from_a_superseded_batch(self, data: st.DataObject, action: str) -> None:
        """A worker that slept past its lease wakes up and writes (the case fencing exists for)."""
        with self.engine.connect() as conn:
            tokens = dict(conn.execute(sa.select(Account.account, Account.lease_token)).all())
        stale = [i for b in self.batches if tokens[b.account] != b.token for i in b.items]
        if not stale:
            return
        item = data.draw(st.sampled_from(stale))
        calls = {
            "run": lambda: self.queue.mark_running(item),
            "complete": lambda: self.queue.complete(item, canonical_status="pending", result={}),
            "fail": lambda: self.queue.fail(item, PortalTimeout()),
        }
        self._write(item, calls[action])

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        if self.batches:
            batch = data.draw(st.sampled_from(self.batches))
            self.queue.release(batch)
            self.batches.remove(batch)

    @rule(seconds=st.sampled_from([1, 15, LEASE_SECONDS + 1]))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @rule()
    def reap(self) -> None:
        self.queue.reap()

    # -- invariants ------------------------------------------------------------------------------------

    @invariant()
    def items_are_conserved_and_leases_consistent(self) -> None:
        items = self._items()
        assert len(items) == self.total
        with self.engine.connect() as conn:
            accounts = {r.account: r for r in conn.execute(sa.select(Account.__table__))}
            last_event = dict(
                conn.execute(
                    sa.select(ItemEvent.item_id, ItemEvent.to_state).where(
                        ItemEvent.id.in_(sa.select(sa.func.max(ItemEvent.id)).group_by(ItemEvent.item_id))
                    )
                ).all()
            )
        for item_id, row in items.items():
            assert last_event[item_id] == row.state
            if row.state in ("leased", "running"):
                account = accounts[row.account]
                assert row.lease_token == account.lease_token, (
                    "an item held under a token that is not current"
                )
                assert account.lease_owner is not None and row.lease_owner == account.lease_owner
                assert row.lease_expires_at == account.lease_expires_at
            else:
                assert row.lease_token is None and row.lease_owner is None
            if row.state in FINAL_STATES:
                assert self.final.setdefault(item_id, row.state) == row.state, "a finished item changed"
            assert row.attempts <= 2
        assert not any(
            item_id in self.final and items[item_id].state not in FINAL_STATES for item_id in items
        )

    @invariant()
    def an_account_is_held_by_at_most_one_live_batch(self) -> None:
        with self.engine.connect() as conn:
            tokens = {
                r.account: r.lease_token
                for r in conn.execute(sa.select(Account.account, Account.lease_token))
            }
        holders: dict[str, int] = {}
        for batch in self.batches:
            if tokens[batch.account] == batch.token:
                holders[batch.account] = holders.get(batch.account, 0) + 1
        assert all(n == 1 for n in holders.values())


@pytest.mark.parametrize("steps", [40])
def test_random_interleavings_keep_the_queue_invariants(engine: Engine, steps: int) -> None:
    QueueMachine.engine = engine
    run_state_machine_as_test(
        QueueMachine,
        settings=settings(
            max_examples=25 if engine.dialect.name == "sqlite" else 12,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
