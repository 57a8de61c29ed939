"""Appeals carry what payer forms ask for: level, dates, disputed codes and amount, ids, contact.

Each field is optional in the model and checked when present; each portal names the fields it
requires and intake refuses an appeal without one, naming the field. Old rows (no level, none of
the new fields) parse, dump and digest exactly as before, so their idempotency keys still match.
Patient and personal values (member id, dates of service, contact) never reach a message or a repr.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from bot.errors import IntakeError
from bot.models import AppealLevel, AppealRequest, NewItem, WorkKind, payload_digest
from bot.queue import Queue
from bot.queue.intake import parse_row
from portals import check_request, registry
from tests.queue_support import APPEAL_NPI, PAYER, add_account, appeal_payload

CANARY_MEMBER = "MBRCANARY77"
CANARY_PHONE = "555-010-7788"


def _appeal(**changes: Any) -> dict[str, Any]:
    payload = appeal_payload()
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


def _errors(payload: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        AppealRequest.model_validate(payload)
    return [(".".join(map(str, e["loc"])), e["msg"]) for e in caught.value.errors()]


# -- old rows ---------------------------------------------------------------------------------------

OLD_PAYLOAD = {  # an appeal as written before levels and form fields existed
    "claim_number": "MH0000000001",
    "reason": "medical_necessity",
    "explanation": "Documented need; see letter.",
    "letter": {"path": "letters/letter.pdf", "sha256": "ab" * 32},
    "approved_by": "R. Approver",
    "approved_at": "2026-01-05T08:00:00+00:00",
}
OLD_DUMP = {  # what the model dumped for it then (and what its digest was computed over)
    "claim_number": "MH0000000001",
    "fill_date": None,
    "reason": "medical_necessity",
    "explanation": "Documented need; see letter.",
    "letter": {"path": "letters/letter.pdf", "sha256": "ab" * 32, "media_type": "application/pdf"},
    "attachments": [],
    "approved_by": "R. Approver",
    "approved_at": "2026-01-05T08:00:00Z",
}


def test_an_old_appeal_parses_at_the_first_level_and_digests_as_before() -> None:
    item = NewItem(kind=WorkKind.APPEAL_SUBMISSION, payer=PAYER, account="acct-1", payload=OLD_PAYLOAD)
    request = item.request
    assert isinstance(request, AppealRequest) and request.level is AppealLevel.FIRST_LEVEL
    assert request.model_dump(mode="json") == OLD_DUMP
    assert item.digest == payload_digest(WorkKind.APPEAL_SUBMISSION, PAYER, "acct-1", OLD_DUMP)
    assert item.key == f"auto:{item.digest[:32]}"  # an old row's automatic key still matches


def test_naming_the_first_level_digests_as_naming_none_and_another_level_does_not() -> None:
    def digest(payload: dict[str, Any]) -> str:
        return NewItem(kind=WorkKind.APPEAL_SUBMISSION, payer=PAYER, account="a", payload=payload).digest

    assert digest({**OLD_PAYLOAD, "level": "first_level"}) == digest(OLD_PAYLOAD)
    assert digest({**OLD_PAYLOAD, "level": "second_level"}) != digest(OLD_PAYLOAD)


# -- each field, checked when present --------------------------------------------------------------


def test_every_field_is_kept_and_normalized() -> None:
    request = AppealRequest.model_validate(
        _appeal(
            level="reconsideration",
            service_dates={"from_date": "2025-11-03", "to_date": "2025-11-04"},
            disputed_codes=["co-50", "N115", "MA130"],
            disputed_amount="125.5",
            billing_npi=APPEAL_NPI,
            rendering_npi="1245319599",
            tin="12-3456789",
            contact={
                "name": "Billing office",
                "phone": "+1 (555) 010-7788",
                "email": "appeals@clinic.example",
            },
        )
    )
    assert request.level is AppealLevel.RECONSIDERATION
    assert request.disputed_codes == ("CO-50", "N115", "MA130")
    assert request.disputed_amount == Decimal("125.50")
    assert request.model_dump(mode="json")["disputed_amount"] == "125.50"
    assert request.tin == "123456789"
    assert request.rendering_npi == "1245319599"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"billing_npi": "1234567890"}, "billing_npi"),  # wrong check digit
        ({"rendering_npi": "123456789"}, "rendering_npi"),  # 9 digits
        ({"billing_npi": "12345678AB"}, "billing_npi"),
        ({"tin": "12345678"}, "tin"),
        ({"tin": "1-2-3456789"}, "tin"),
        ({"disputed_amount": "-1.00"}, "disputed_amount"),
        ({"disputed_amount": "1.234"}, "disputed_amount"),
        ({"disputed_amount": "NaN"}, "disputed_amount"),
        ({"disputed_codes": ["XX-50"]}, "disputed_codes.0"),
        ({"disputed_codes": ["50", "N1234"]}, "disputed_codes.1"),
        ({"level": "third_level"}, "level"),
        ({"denial_date": "2026-02-30"}, "denial_date"),
        ({"service_dates": {"from_date": "2025-11-04", "to_date": "2025-11-03"}}, "service_dates"),
        ({"contact": {"name": "Billing office"}}, "contact"),
        ({"contact": {"name": "Billing office", "email": "not-an-address"}}, "contact.email"),
    ],
)
def test_a_bad_field_is_refused_by_its_name(change: dict[str, Any], field: str) -> None:
    assert [where for where, _ in _errors(_appeal(**change))] == [field]


def test_the_npi_check_digit_follows_the_cms_luhn_rule_with_prefix_80840() -> None:
    # 123456789 -> check digit 3 (the CMS worked example); every other last digit is refused
    for last in range(10):
        payload = _appeal(billing_npi=f"123456789{last}")
        if last == 3:
            AppealRequest.model_validate(payload)
        else:
            assert _errors(payload)[0][0] == "billing_npi"


def test_patient_and_contact_values_stay_out_of_messages_and_repr() -> None:
    row = {
        "kind": "appeal_submission",
        "payer": PAYER,
        "account": "acct-1",
        "payload": _appeal(member_id=f"{CANARY_MEMBER} x", contact={"name": "Ann Canary", "phone": "no"}),
    }
    with pytest.raises(IntakeError) as caught:
        parse_row(row)
    assert caught.value.field == "payload.member_id"
    assert "payload.contact" in caught.value.message
    assert CANARY_MEMBER not in caught.value.message and "Ann Canary" not in caught.value.message
    good = AppealRequest.model_validate(
        _appeal(
            member_id=CANARY_MEMBER,
            service_dates={"from_date": "2025-11-03"},
            contact={"name": "Ann Canary", "phone": CANARY_PHONE},
        )
    )
    shown = repr(good) + str(good)
    assert CANARY_MEMBER not in shown and CANARY_PHONE not in shown and "2025-11-03" not in shown
    assert {CANARY_MEMBER, CANARY_PHONE, "Ann Canary"} <= {str(v) for v in good.patient_values()}


# -- each portal's required fields -----------------------------------------------------------------


def test_every_portal_requires_fields_an_appeal_has() -> None:
    for payer, portal in registry().items():
        assert portal.appeal_requires, payer
        assert portal.appeal_requires <= set(AppealRequest.model_fields), payer
        assert {"denial_date", "member_id"} <= portal.appeal_requires, payer
    medical = {"meridian", "bluepeak", "payerhub"}
    assert all("billing_npi" in registry()[p].appeal_requires for p in medical)
    assert "billing_npi" not in registry()["rxpress"].appeal_requires


@pytest.mark.parametrize("payer", ["meridian", "bluepeak", "rxpress", "payerhub"])
def test_intake_refuses_an_appeal_without_a_required_field_naming_it(payer: str) -> None:
    portal = registry()[payer]
    for name in sorted(portal.appeal_requires):
        request = AppealRequest.model_validate(_appeal(**{name: None}))
        with pytest.raises(IntakeError) as caught:
            check_request(WorkKind.APPEAL_SUBMISSION, payer, request)
        # the claim number and plan are checked first, so only a field of this payer's form is named
        if caught.value.field in ("payload.claim_number", "payload.plan", "payload.fill_date"):
            continue
        assert caught.value.field == f"payload.{name}", (payer, name)
        assert caught.value.message.startswith(f"payload.{name}: {portal.display_name} requires it")


def test_a_required_field_missing_is_refused_at_the_queue_naming_the_field(
    queue: Queue, engine: Engine
) -> None:
    add_account(engine, "acct-1")
    item = NewItem(
        kind=WorkKind.APPEAL_SUBMISSION,
        payer=PAYER,
        account="acct-1",
        payload=_appeal(member_id=None),
        idempotency_key="appeal-no-member",
    )
    report = queue.enqueue([item])
    assert report.queued == [] and [(r.field, r.message) for r in report.rejected] == [
        ("payload.member_id", "payload.member_id: Meridian Health requires it on an appeal")
    ]
    assert queue.enqueue([item.model_copy(update={"payload": _appeal()})]).queued  # with it, queued
