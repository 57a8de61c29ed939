"""Prior authorizations in X12 278 terms: every sandbox wording against a table written here by
hand (not derived from the code), the A6 and NR cases, the expiry flag, the sweep rule per HCR01
code, and what Meridian's and PayerHub's pages show of a decision read back as the sandbox's truth."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page
from sqlalchemy.engine import Engine

import scheduler
from bot.clock import ManualClock
from bot.codelists import shipped_codelists
from bot.db import make_engine
from bot.mapping import StatusMapper
from bot.migrate import upgrade
from bot.models import NewItem, PaReading, PaStatusRequest, WorkKind
from bot.portal import Portal
from bot.queue.sweeps import FINAL_PA_DECISIONS, is_final
from bot.services import build_services
from bot.settings import Settings
from bot.status import HCR01, Hcr01, PaRule, pa_rules, pa_status_from_rule
from bot.steps import StepRecorder
from portals import get_portal
from sandbox.data import generate
from sandbox.payers import DEFAULT_SEED, get_payer
from tests.fixtures.sandbox import SandboxPortal, canary_account, login_secrets
from tests.queue_support import finish
from vault import Keyring

# Every PA wording of every sandbox payer, and the HCR01 code a 278 would carry for it. Written by
# hand from the X12 278 code list: "modified" and "with changes" are A6 (certified, not as asked),
# not A2; information the payer asked for pends the request (A4); NR is payerbot's own code.
EXPECTED: dict[str, dict[str, str]] = {
    "meridian": {
        "Approved": "A1",
        "Approved with modifications": "A6",
        "Denied": "A3",
        "Pending review": "A4",
        "Additional information needed": "A4",
        "Cancelled": "C",
        "No authorization required": "NR",
        "Authorized at a different site of care": "A6",
        "Partially approved": "A2",
    },
    "bluepeak": {
        "Authorized": "A1",
        "Authorized with changes": "A6",
        "Not authorized": "A3",
        "In review": "A4",
        "Information requested": "A4",
        "Withdrawn": "C",
    },
    "rxpress": {
        "APPROVED": "A1",
        "DENIED": "A3",
        "PENDED": "A4",
        "MORE INFORMATION NEEDED": "A4",
    },
    "payerhub": {
        "Certified": "A1",
        "Certified - modified": "A6",
        "Not certified": "A3",
        "Pended - in clinical review": "A4",
        "Pended - information requested": "A4",
        "Request canceled": "C",
        "Certification not required": "NR",
        "Contact the plan's utilization management": "CT",
    },
}
# The project's word for each code, and whether a sweep stops on it, also by hand.
WORDS = {
    "A1": "approved",
    "A2": "partially_approved",
    "A3": "denied",
    "A4": "pended",
    "A6": "modified",
    "C": "cancelled",
    "CT": "contact_payer",
    "NR": "not_required",
}
FINAL = {"A1": True, "A2": True, "A3": True, "A6": True, "C": True, "NR": True, "A4": False, "CT": False}
GRANTED = {"A1", "A2", "A6"}  # shows a certification number and units on Meridian and PayerHub

MAPPER = StatusMapper(shipped_codelists())


@pytest.mark.parametrize("payer", sorted(EXPECTED))
def test_every_wording_maps_to_its_hcr01_code_in_the_sandbox_and_the_portal_table(payer: str) -> None:
    spec, portal = get_payer(payer).data, get_portal(payer)
    assert {kind.wording for kind in spec.pa_kinds} == set(EXPECTED[payer])  # none left untested
    for kind in spec.pa_kinds:
        code = EXPECTED[payer][kind.wording]
        assert kind.hcr01 == code, f"sandbox: {kind.wording}"
        status = MAPPER.pa(portal, PaReading(pa_number="X", status_text=kind.wording))
        assert (status.hcr01, status.label, status.decision) == (code, code, WORDS[code]), kind.wording
        assert status.hcr01_description == HCR01[Hcr01(code)][0]


@pytest.mark.parametrize("payer", sorted(EXPECTED))
def test_every_seeded_pa_carries_its_wordings_code_and_what_backs_it(payer: str) -> None:
    data = generate(get_payer(payer).data, f"{payer}:{DEFAULT_SEED}")
    assert {pa.wording for pa in data.pas} == set(EXPECTED[payer])
    for pa in data.pas:
        truth = pa.truth()
        code = EXPECTED[payer][pa.wording]
        assert (truth["hcr01"], truth["decision"]) == (code, WORDS[code])
        granted = code in GRANTED
        assert (truth["certification_number"] is not None) == granted, pa.wording
        assert (truth["units_approved"] is not None) == granted
        if granted:
            assert 0 < truth["units_approved"] <= truth["units_requested"]
            assert (truth["units_approved"] == truth["units_requested"]) == (code == "A1")
        if truth["reason_code"] is not None:
            assert code == "A3" and truth["reason"]


def test_modified_and_other_site_of_care_are_a6_and_not_required_is_the_projects_nr() -> None:
    meridian = get_portal("meridian")
    for wording in ("Approved with modifications", "Authorized at a different site of care"):
        assert MAPPER.pa(meridian, PaReading(pa_number="X", status_text=wording)).hcr01 == "A6"
    assert MAPPER.pa(meridian, PaReading(pa_number="X", status_text="Partially approved")).hcr01 == "A2"
    not_required = MAPPER.pa(meridian, PaReading(pa_number="X", status_text="No authorization required"))
    assert (not_required.hcr01, not_required.decision) == ("NR", "not_required")
    assert "not X12" in not_required.hcr01_description
    assert [code.value for code in Hcr01] == ["A1", "A2", "A3", "A4", "A6", "C", "CT", "NR"]


def test_a_table_refuses_a_code_outside_the_allowed_set() -> None:
    assert pa_rules("wording | hcr01\nSite changed | A6\n") == {"Site changed": PaRule(hcr01=Hcr01.A6)}
    for code in ("A5", "approved", "a1"):  # A5 (upheld) is an appeal's outcome; words are not codes
        with pytest.raises(ValueError, match="line 2, column hcr01"):
            pa_rules(f"wording | hcr01\nSomething | {code}\n")


TODAY = date(2026, 12, 2)


def _status(code: str, valid_to: date | None, today: date | None = TODAY) -> Any:
    reading = PaReading(pa_number="X", status_text="w", valid_from=date(2026, 1, 1), valid_to=valid_to)
    return pa_status_from_rule(PaRule(hcr01=Hcr01(code)), reading, shipped_codelists(), today=today)


def test_a_granted_authorization_past_its_end_date_is_flagged_expired() -> None:
    for code in ("A1", "A2", "A6"):
        assert _status(code, TODAY - timedelta(days=1)).expired is True
        assert _status(code, TODAY).expired is False  # its last day is still good
        assert _status(code, TODAY + timedelta(days=30)).expired is False
        assert _status(code, None).expired is False  # no end date shown
        assert _status(code, TODAY - timedelta(days=1), today=None).expired is False  # no run date
    for code in ("A3", "A4", "C", "CT", "NR"):  # nothing was granted: nothing expires
        assert _status(code, TODAY - timedelta(days=1)).expired is False
    meridian = get_portal("meridian")
    old = PaReading(pa_number="X", status_text="Approved", valid_to=TODAY - timedelta(days=5))
    assert MAPPER.pa(meridian, old, today=TODAY).expired is True
    assert MAPPER.pa(meridian, old, today=TODAY - timedelta(days=10)).expired is False
    assert MAPPER.pa(meridian, old, today=TODAY).model_dump(mode="json")["expired"] is True


def test_the_sweep_rule_names_hcr01_codes() -> None:
    for code, final in FINAL.items():
        assert is_final(WorkKind.PA_STATUS, code) is final, code
    assert {code for code, final in FINAL.items() if final} == FINAL_PA_DECISIONS
    assert is_final(WorkKind.PA_STATUS, "approved") is False  # the old words are no longer final


def test_sweeps_stop_on_decided_authorizations_and_go_on_for_pended_and_contact_payer(
    engine: Engine,
) -> None:
    clock = ManualClock()
    settings = Settings(vault_key=Keyring.generate().dump(), sweep_interval_minutes=60)  # type: ignore[arg-type]
    services = build_services(settings, engine=engine, clock=clock)
    services.vault.add_account(
        "meridian", "acct", username="u", password="p", second_factor="totp", totp_secret="JBSWY3DPEHPK3PXP"
    )
    numbers = {f"MPA00001{n:02d}": code for n, code in enumerate(FINAL, 1)}
    for number, code in numbers.items():  # each authorization checked once, its answer this code
        payload = {"pa_number": number}
        item = NewItem(kind=WorkKind.PA_STATUS, payer="meridian", account="acct", payload=payload)
        finish(services.queue, item, code, {"hcr01": code})
    clock.advance(timedelta(minutes=61).total_seconds())
    assert scheduler.Ticks(services).sweep() == 2
    queued = [services.queue.get(i.id).payload["pa_number"] for i in services.queue.list(state="queued")]
    assert sorted(numbers[number] for number in queued) == ["A4", "CT"]


# -- what the pages show, read back -------------------------------------------------------------------


@pytest.fixture
def steps(page: Page) -> StepRecorder:
    page.set_default_timeout(5_000)
    page.set_default_navigation_timeout(10_000)
    return StepRecorder(page)


def _signed_in(payer: str, page: Page, sandbox: SandboxPortal, steps: StepRecorder) -> Portal:
    portal = get_portal(payer)(page, sandbox.url, steps)
    portal.login(login_secrets(canary_account(sandbox.state)))
    return portal


DETAILS = ("certification_number", "units_requested", "units_approved", "reason_code", "reason")


def _read_every_wording(payer: str, portal: Portal, sandbox: SandboxPortal) -> None:
    sample = {pa.wording: pa for pa in sandbox.state.pas.values()}
    assert set(sample) == set(EXPECTED[payer])
    for wording, pa in sample.items():
        reading = portal.check_pa_status(PaStatusRequest(pa_number=pa.pa_number, plan=pa.plan))
        status = MAPPER.pa(type(portal), reading, today=TODAY).model_dump(mode="json")
        truth = pa.truth()
        assert status["hcr01"] == EXPECTED[payer][wording], wording
        assert {k: status[k] for k in DETAILS} == {k: truth[k] for k in DETAILS}, wording
        assert (status["valid_from"], status["valid_to"]) == (truth["valid_from"], truth["valid_to"])
        ended = truth["valid_to"] is not None and date.fromisoformat(truth["valid_to"]) < TODAY
        assert status["expired"] == (ended and status["hcr01"] in GRANTED)


def test_meridian_shows_certification_units_and_reason_code(
    page: Page, meridian_sandbox: SandboxPortal, steps: StepRecorder
) -> None:
    portal = _signed_in("meridian", page, meridian_sandbox, steps)
    _read_every_wording("meridian", portal, meridian_sandbox)


def test_payerhub_shows_certification_units_and_reason_code(
    page: Page, payerhub_sandbox: SandboxPortal, steps: StepRecorder
) -> None:
    portal = _signed_in("payerhub", page, payerhub_sandbox, steps)
    _read_every_wording("payerhub", portal, payerhub_sandbox)


def test_the_migration_turns_stored_pa_words_into_their_codes(tmp_path: Path) -> None:
    """Rows done before revision 0005 held the project's word: each becomes the code its result
    recorded then (or the word's code), so a decided authorization is not checked again."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        upgrade(engine, "0004")
        rows = [
            (1, "pa_status", "partially_approved", {"hcr01": "A2", "decision": "partially_approved"}),
            (2, "pa_status", "cancelled", None),  # no result kept: the word's own code
            (3, "claim_status", "approved", {"category": "F1"}),  # not a PA: untouched
        ]
        with engine.begin() as conn:
            for row_id, kind, status, result in rows:
                conn.execute(
                    sa.text(
                        "INSERT INTO work_items (id, idempotency_key, kind, payer, account, payload, state,"
                        " canonical_status, result) VALUES (:id, :key, :kind, 'meridian', 'a', '{}', 'done',"
                        " :status, :result)"
                    ),
                    {
                        "id": row_id,
                        "key": f"k{row_id}",
                        "kind": kind,
                        "status": status,
                        "result": json.dumps(result) if result else None,
                    },
                )
        upgrade(engine)
        with engine.connect() as conn:
            got = dict(conn.execute(sa.text("SELECT id, canonical_status FROM work_items")).all())
        assert got == {1: "A2", 2: "C", 3: "approved"}
        assert is_final(WorkKind.PA_STATUS, got[1]) and is_final(WorkKind.PA_STATUS, got[2])
    finally:
        engine.dispose()
