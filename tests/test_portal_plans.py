"""Multi-plan portals, with no payer named: a request names its health plan, and a portal that
serves several refuses at intake a request with no plan or a plan it does not serve."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from bot.errors import IntakeError
from bot.models import ClaimStatusRequest, NewItem, PaStatusRequest, WorkKind
from bot.portal import Action, Portal
from bot.queue import Queue
from portals.meridian import MeridianPortal
from tests.queue_support import add_account


class Clearinghouse(Portal):
    payer_id = ""  # a test class, not a registered payer
    display_name = "Clearinghouse"
    default_url = "http://127.0.0.1:9"
    actions = frozenset(Action)
    plans_required = True
    plans = frozenset({"Blue Lakes Health", "Cardinal Care"})


class AnyPlan(Clearinghouse):
    plans = frozenset()  # plans come and go: the portal's own list decides


def test_a_multi_plan_portal_takes_a_plan_it_serves() -> None:
    Clearinghouse.check_request(
        WorkKind.CLAIM_STATUS, ClaimStatusRequest(claim_number="C-1", plan="Cardinal Care")
    )
    Clearinghouse.check_request(
        WorkKind.PA_STATUS, PaStatusRequest(pa_number="P-1", plan="Blue Lakes Health")
    )
    AnyPlan.check_request(WorkKind.CLAIM_STATUS, ClaimStatusRequest(claim_number="C-1", plan="Summit Care"))


@pytest.mark.parametrize(
    ("portal", "plan", "words"),
    [
        (
            Clearinghouse,
            None,
            r"serves several health plans; name one \(its plans: Blue Lakes Health, Cardinal",
        ),
        (Clearinghouse, "Summit Care", "not a plan Clearinghouse serves"),
        (AnyPlan, None, "serves several health plans; name one$"),
        (MeridianPortal, "Blue Lakes Health", "Meridian Health serves one plan"),
    ],
)
def test_a_missing_or_unknown_plan_is_refused_at_intake_naming_the_field(
    portal: type[Portal], plan: str | None, words: str
) -> None:
    with pytest.raises(IntakeError, match=words) as refused:
        portal.check_request(
            WorkKind.CLAIM_STATUS, ClaimStatusRequest(claim_number="MH0000000001", plan=plan)
        )
    assert refused.value.field == "payload.plan"
    assert str(refused.value).startswith("payload.plan: ")


def test_a_request_without_a_plan_stores_and_digests_as_before_plans_existed() -> None:
    plain = NewItem(
        kind=WorkKind.CLAIM_STATUS, payer="meridian", account="a", payload={"claim_number": "MH0000000001"}
    )
    assert plain.request.model_dump(mode="json") == {"claim_number": "MH0000000001", "fill_date": None}
    # the digest of that payload before this change: rows and idempotency keys written then still match
    assert plain.digest == "18b2be66310216b7f160cb9565534dd3f261b0c4e0fecd2553ae06233a33f2f1"
    planned = plain.model_copy(update={"payload": {"claim_number": "MH0000000001", "plan": "Cardinal Care"}})
    assert planned.request.model_dump(mode="json")["plan"] == "Cardinal Care"
    assert planned.digest != plain.digest


def test_the_queue_refuses_a_plan_the_payer_does_not_serve(engine: Engine, queue: Queue) -> None:
    add_account(engine, "acct-1")
    report = queue.enqueue(
        [
            NewItem(
                kind=WorkKind.CLAIM_STATUS,
                payer="meridian",
                account="acct-1",
                payload={"claim_number": "MH0000000001", "plan": "Cardinal Care"},
            )
        ]
    )
    assert not report.queued
    assert report.rejected[0].field == "payload.plan"
