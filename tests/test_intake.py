"""Intake is strict: each bad row is refused with the field named, and nothing queued changes."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.clock import ManualClock
from bot.db import WorkItem
from bot.errors import IntakeError
from bot.models import ItemState, NewItem, WorkKind
from bot.queue import Queue
from bot.queue.intake import parse_row
from tests.queue_support import PAYER, add_account, appeal, appeal_payload, claim, finish, snapshot, state_of


def _row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "kind": "claim_status",
        "payer": PAYER,
        "account": "acct-1",
        "payload": {"claim_number": "MH0000000001"},
        "idempotency_key": "k-1",
    }
    row.update(overrides)
    return row


@pytest.mark.parametrize(
    ("row", "field", "words"),
    [
        (
            _row(kind="appeal_submission", payload={**appeal_payload(), "approved_by": None}),
            "payload.approved_by",
            "valid string",
        ),
        (
            _row(
                kind="appeal_submission",
                payload={k: v for k, v in appeal_payload().items() if k != "approved_at"},
            ),
            "payload.approved_at",
            "Field required",
        ),
        (
            _row(
                kind="appeal_submission", payload={**appeal_payload(), "approved_at": "2026-01-05T08:00:00"}
            ),
            "payload.approved_at",
            "timezone",
        ),
        (_row(kind="weather_report"), "kind", "Input should be"),
        (_row(payload={"pa_number": "MPA0000001"}), "payload.claim_number", "Field required"),
        (_row(payer="Meridian Health"), "payer", "pattern"),
        (_row(color="blue"), "color", "Extra inputs"),
        ([1, 2], None, "JSON object"),
    ],
)
def test_parse_row_names_the_field(row: Any, field: str | None, words: str) -> None:
    with pytest.raises(IntakeError) as caught:
        parse_row(row)

    assert caught.value.field == field
    assert words in caught.value.message
    if field:
        assert caught.value.message.startswith(field)


def test_parse_row_messages_never_carry_the_values() -> None:
    with pytest.raises(IntakeError) as caught:
        parse_row(_row(payload={"claim_number": "Jane Doe 1980", "member": "W123456789"}))

    assert "Jane" not in caught.value.message and "W123456789" not in caught.value.message


@pytest.mark.parametrize(
    ("item", "field"),
    [
        (
            NewItem(
                kind=WorkKind.CLAIM_STATUS,
                payer="nobody_health",
                account="acct-1",
                payload={"claim_number": "MH0000000001"},
            ),
            "payer",
        ),
        (claim(1, "acct-missing"), "account"),
        (
            NewItem(
                kind=WorkKind.CLAIM_STATUS, payer=PAYER, account="acct-1", payload={"claim_number": "XX-1"}
            ),
            "payload.claim_number",
        ),
    ],
)
def test_enqueue_refuses_rows_the_payer_could_never_run(
    engine: Engine, queue: Queue, item: NewItem, field: str
) -> None:
    add_account(engine, "acct-1")
    queue.enqueue([claim(99)])
    before = snapshot(engine)

    report = queue.enqueue([item])

    assert report.queued == [] and len(report.rejected) == 1
    assert report.rejected[0].field == field and report.rejected[0].message.startswith(field)
    assert snapshot(engine) == before


def test_good_rows_are_queued_beside_bad_ones(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")

    report = queue.enqueue([claim(1), claim(2, "acct-missing"), appeal(3)])

    assert len(report.queued) == 2
    assert [(r.index, r.field) for r in report.rejected] == [(1, "account")]
    assert [state_of(engine, i) for i in report.queued] == ["queued", "queued"]


def test_the_same_key_and_payload_is_accepted_once_and_reported_as_duplicate(
    engine: Engine, queue: Queue
) -> None:
    add_account(engine, "acct-1")
    first = queue.enqueue([claim(1)])

    again = queue.enqueue([claim(1), claim(1)])

    assert again.queued == [] and again.rejected == []
    assert [(d.index, d.item_id) for d in again.duplicates] == [(0, first.queued[0]), (1, first.queued[0])]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(WorkItem)).scalar() == 1


def test_a_repeat_inside_one_input_is_a_duplicate_of_the_first(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")

    report = queue.enqueue([claim(1), claim(1)])

    assert len(report.queued) == 1
    assert [(d.index, d.item_id) for d in report.duplicates] == [(1, report.queued[0])]


def test_the_same_key_with_another_payload_is_refused_and_changes_nothing(
    engine: Engine, queue: Queue
) -> None:
    add_account(engine, "acct-1")
    queue.enqueue([claim(1, key="shared-key")])
    before = snapshot(engine)

    report = queue.enqueue([claim(2, key="shared-key")])
    within = queue.enqueue([claim(3, key="other"), claim(4, key="other")])

    assert report.rejected[0].field == "idempotency_key"
    assert "different payload" in report.rejected[0].message
    assert [r.index for r in within.rejected] == [1] and len(within.queued) == 1
    assert snapshot(engine)[: len(before)] == before


def test_rows_without_a_key_are_keyed_by_their_content(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")
    row = NewItem(kind=WorkKind.PA_STATUS, payer=PAYER, account="acct-1", payload={"pa_number": "MPA0000001"})

    first = queue.enqueue([row])
    second = queue.enqueue([row])

    assert len(first.queued) == 1 and second.duplicates[0].item_id == first.queued[0]
    assert queue.get(first.queued[0]).idempotency_key.startswith("auto:")


def _upstream(
    engine: Engine,
    clock: ManualClock,
    key: str,
    kind: str,
    payload: Any,
    *,
    raw: bool = False,
    payer: str = PAYER,
) -> int:
    """A row as an upstream system writes it: straight into work_items, state queued."""
    with engine.begin() as conn:
        values = {
            "idempotency_key": key,
            "kind": kind,
            "payer": payer,
            "account": "acct-1",
            "payload": payload,
            "state": "queued",
            "not_before": clock.now(),
            "created_at": clock.now(),
            "updated_at": clock.now(),
        }
        if raw:  # bytes SQLAlchemy's JSON type would never write
            values["payload"] = {}
        item_id = conn.execute(
            sa.insert(WorkItem.__table__).values(**values).returning(WorkItem.id)
        ).scalar_one()
        if raw:
            conn.execute(
                sa.text("UPDATE work_items SET payload = :p WHERE id = :id"), {"p": payload, "id": item_id}
            )
        return int(item_id)


def test_malformed_upstream_rows_are_rejected_at_lease_and_good_rows_still_lease(
    engine: Engine, queue: Queue, clock: ManualClock
) -> None:
    add_account(engine, "acct-1")
    bad_number = _upstream(engine, clock, "u-1", "claim_status", {"claim_number": "not-meridian"})
    bad_kind = _upstream(engine, clock, "u-2", "fax_status", {"claim_number": "MH0000000001"})
    no_approver = _upstream(
        engine,
        clock,
        "u-3",
        "appeal_submission",
        {k: v for k, v in appeal_payload().items() if k != "approved_by"},
    )
    good = _upstream(engine, clock, "u-4", "claim_status", {"claim_number": "MH0000000004"})

    batch = queue.lease_batch("w1", limit=1)

    assert batch is not None and [i.id for i in batch.items] == [good]
    rejected = {i: queue.get(i) for i in (bad_number, bad_kind, no_approver)}
    assert all(v.state is ItemState.REJECTED for v in rejected.values())
    assert rejected[bad_number].last_error.startswith("payload.claim_number")
    assert rejected[bad_kind].last_error.startswith("kind")
    assert rejected[no_approver].last_error.startswith("payload.approved_by")
    assert rejected[bad_kind].history[-1].to_state == "rejected"


def test_upstream_pharmacy_rows_without_a_fill_date_are_rejected_at_lease(
    engine: Engine, queue: Queue, clock: ManualClock
) -> None:
    """The payer's own rules run on the read path too, so a page object can rely on them (RxPress
    looks a claim up by Rx number and fill date, and no longer checks for one itself)."""
    add_account(engine, "acct-1", payer="rxpress")
    status = _upstream(engine, clock, "u-1", "claim_status", {"claim_number": "1234567"}, payer="rxpress")
    appeal_row = {**appeal_payload(), "claim_number": "1234567"}
    appeal = _upstream(engine, clock, "u-2", "appeal_submission", appeal_row, payer="rxpress")

    assert queue.lease_batch("w1") is None

    for item_id in (status, appeal):
        view = queue.get(item_id)
        assert view.state is ItemState.REJECTED
        assert view.last_error is not None and view.last_error.startswith("payload.fill_date")


def test_an_upstream_row_that_is_not_json_is_rejected_not_a_crash(
    engine: Engine, queue: Queue, clock: ManualClock, db_url: str
) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's json column refuses text that is not JSON: such a row cannot exist there")
    add_account(engine, "acct-1")
    broken = _upstream(engine, clock, "u-1", "claim_status", "{claim_number: MH", raw=True)
    good = _upstream(engine, clock, "u-2", "claim_status", {"claim_number": "MH0000000002"})

    batch = queue.lease_batch("w1")

    assert batch is not None and [i.id for i in batch.items] == [good]
    assert state_of(engine, broken) == "rejected"
    with engine.connect() as conn:
        reason = conn.execute(sa.select(WorkItem.last_error).where(WorkItem.id == broken)).scalar()
    assert reason == "payload: not valid JSON"


def test_upstream_rows_naming_no_account_are_rejected_by_the_reaper(
    engine: Engine, queue: Queue, clock: ManualClock
) -> None:
    add_account(engine, "acct-1")
    with engine.begin() as conn:
        conn.execute(
            sa.insert(WorkItem.__table__).values(
                idempotency_key="u-9",
                kind="claim_status",
                payer=PAYER,
                account="acct-gone",
                payload={"claim_number": "MH0000000009"},
                not_before=clock.now(),
            )
        )

    queue.reap()

    (orphan,) = queue.list(state="rejected")
    assert orphan.last_error is not None and orphan.last_error.startswith("account")


def test_enqueue_stores_the_validated_payload(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")
    item_id = queue.enqueue([claim(5)]).queued[0]

    with engine.connect() as conn:
        payload = conn.execute(sa.select(WorkItem.payload).where(WorkItem.id == item_id)).scalar()
    assert payload == {"claim_number": "MH0000000005", "fill_date": None}
    assert json.dumps(payload)


# -- one appeal per claim and level (issue 11, part 6) ------------------------------------------------


def _appeal_at(n: int, key: str, level: str | None = None, **changes: Any) -> NewItem:
    payload = {**appeal_payload(n), **({"level": level} if level else {}), **changes}
    return NewItem(
        kind=WorkKind.APPEAL_SUBMISSION, payer=PAYER, account="acct-1", payload=payload, idempotency_key=key
    )


def _force_state(engine: Engine, item_id: int, state: ItemState) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(WorkItem.__table__).where(WorkItem.id == item_id).values(state=state.value))


def test_a_second_appeal_of_a_claim_and_level_under_another_key_is_refused_naming_the_first(
    queue: Queue, engine: Engine
) -> None:
    add_account(engine, "acct-1")
    [first] = queue.enqueue([_appeal_at(1, "appeal-a")]).queued
    report = queue.enqueue([_appeal_at(1, "appeal-b"), _appeal_at(1, "appeal-a")])
    assert [(r.index, r.field, r.message) for r in report.rejected] == [
        (
            0,
            "payload.claim_number",
            f"payload.claim_number: item {first} already appeals this claim at first_level (queued)",
        )
    ]
    assert [d.item_id for d in report.duplicates] == [first]  # the same key is the same appeal
    assert queue.enqueue([_appeal_at(2, "appeal-other-claim")]).queued  # another claim is free


def test_within_one_input_the_second_appeal_of_a_claim_and_level_is_refused(
    queue: Queue, engine: Engine
) -> None:
    add_account(engine, "acct-1")
    report = queue.enqueue([_appeal_at(1, "a"), _appeal_at(1, "b", "first_level")])
    assert len(report.queued) == 1
    assert [r.message for r in report.rejected] == [
        "payload.claim_number: an earlier row of this input already appeals this claim at first_level"
        " (queued)"
    ]


@pytest.mark.parametrize("ended", [ItemState.CANCELLED, ItemState.FAILED, ItemState.REJECTED])
def test_an_appeal_that_was_never_filed_frees_its_level(
    queue: Queue, engine: Engine, ended: ItemState
) -> None:
    add_account(engine, "acct-1")
    [first] = queue.enqueue([_appeal_at(1, "appeal-a")]).queued
    _force_state(engine, first, ended)
    assert queue.enqueue([_appeal_at(1, "appeal-b")]).queued


@pytest.mark.parametrize(
    "standing", [ItemState.DONE, ItemState.NEEDS_HUMAN, ItemState.RETRY_WAIT, ItemState.RUNNING]
)
def test_an_appeal_filed_or_maybe_filed_keeps_its_level(
    queue: Queue, engine: Engine, standing: ItemState
) -> None:
    add_account(engine, "acct-1")
    [first] = queue.enqueue([_appeal_at(1, "appeal-a")]).queued
    _force_state(engine, first, standing)
    report = queue.enqueue([_appeal_at(1, "appeal-b")])
    assert [r.field for r in report.rejected] == ["payload.claim_number"]
    assert f"item {first}" in report.rejected[0].message


def test_the_next_level_follows_once_the_previous_has_a_result(queue: Queue, engine: Engine) -> None:
    add_account(engine, "acct-1")
    [first] = queue.enqueue([_appeal_at(1, "level-1")]).queued
    early = queue.enqueue([_appeal_at(1, "level-2", "second_level")])
    assert [r.message for r in early.rejected] == [
        f"payload.claim_number: item {first} appeals this claim at first_level and has no result yet "
        "(queued); a second_level appeal follows it once it is done"
    ]
    _force_state(engine, first, ItemState.DONE)
    [second] = queue.enqueue([_appeal_at(1, "level-2", "second_level")]).queued
    lower = queue.enqueue([_appeal_at(1, "reconsider", "reconsideration")])
    assert [r.message for r in lower.rejected] == [
        f"payload.claim_number: item {first} already appeals this claim at a higher level (first_level)"
    ]
    _force_state(engine, second, ItemState.DONE)
    assert queue.enqueue([_appeal_at(1, "external", "external_review")]).queued


def test_a_pharmacy_claim_is_one_rx_and_fill_date(queue: Queue, engine: Engine) -> None:
    add_account(engine, "acct-1", payer="rxpress")

    def rx_appeal(key: str, fill: str) -> NewItem:
        payload = {**appeal_payload(), "claim_number": "1234567", "fill_date": fill}
        return NewItem(
            kind=WorkKind.APPEAL_SUBMISSION,
            payer="rxpress",
            account="acct-1",
            payload=payload,
            idempotency_key=key,
        )

    assert queue.enqueue([rx_appeal("fill-1", "2025-12-01")]).queued
    assert queue.enqueue([rx_appeal("fill-2", "2025-12-29")]).queued  # another fill: another claim
    assert [r.field for r in queue.enqueue([rx_appeal("fill-1-again", "2025-12-01")]).rejected] == [
        "payload.claim_number"
    ]


def test_an_appeal_of_a_reject_no_appeal_can_change_is_refused_with_what_to_do(
    queue: Queue, engine: Engine
) -> None:
    """A pharmacy claim whose latest status check found a primary reject that no redetermination
    can take (79 refill too soon) is refused, naming the reject and what fixes it; once a later
    check finds an appealable one (70 not covered), the appeal is accepted."""
    add_account(engine, "acct-1", payer="rxpress")
    claim = {"claim_number": "1234567", "fill_date": "2025-12-01"}

    def checked(key: str, *rejects: tuple[str, bool, str | None]) -> None:
        status = NewItem(
            kind=WorkKind.CLAIM_STATUS, payer="rxpress", account="acct-1", payload=claim, idempotency_key=key
        )
        view = [{"code": c, "description": None, "appealable": a, "instead": i} for c, a, i in rejects]
        finish(
            queue,
            status,
            "F2",
            {"category": "F2", "pharmacy": {"response_status": "rejected", "rejects": view}},
        )

    def appeal_of(key: str) -> NewItem:
        payload = {**appeal_payload(), **claim}
        return NewItem(
            kind=WorkKind.APPEAL_SUBMISSION,
            payer="rxpress",
            account="acct-1",
            payload=payload,
            idempotency_key=key,
        )

    checked("check-1", ("79", False, "wait until the plan's next allowed fill date"), ("70", True, None))
    (refused,) = queue.enqueue([appeal_of("too-soon")]).rejected
    assert refused.field == "payload.claim_number"
    assert "reject 79" in refused.message and "next allowed fill date" in refused.message
    assert "1234567" not in refused.message
    checked("check-2", ("70", True, None))
    assert queue.enqueue([appeal_of("not-covered")]).queued
