"""No secret and no patient data anywhere payerbot writes: the canary scan.

Real worker processes run the demo's kind of work against the Meridian sandbox for a canary
account and a canary patient: status reads, a prior authorization, appeals, a submit recorded while
its answer failed (reconciled), and a redesigned portal that fails the run and leaves a scenario
bundle; some runs record everything. Then every log line, every database column outside the vault's
ciphertext, and every file under the artifacts folder (zip members and HAR bodies included) are
searched for every canary in every spelling: zero hits.

The second test puts a canary in every patient field a pharmacy portal (RxPress: Rx number, fill
date, drug) and a medical one (Meridian: date of service, authorized service) show, plus a
multi-line explanation, and runs one worker that records everything, under each redesign: the
cosmetic one works, the renamed one fails every item and keeps the failures. The HTML report joins
the scan.

The property test at the end renders random nested log events through the real logging setup.
"""

from __future__ import annotations

import io
import json
import random
import string
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyotp
import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.logging import REDACTED_KEYS, SAFE_KEYS, configure_logging, get_logger
from bot.redact import PROCESS_SECRETS
from sandbox.data import Patient
from tests.canary_support import PAYLOAD_COLUMN, Canaries, Scan
from tests.e2e_support import (
    WorkerRun,
    Workspace,
    all_final,
    appeal_item,
    enqueue_status,
    item_rows,
    make_workspace,
    run_cli,
    run_worker,
)
from tests.fixtures.sandbox import SandboxPortal


def _letters(n: int) -> str:
    return "".join(random.choices(string.ascii_lowercase, k=n))


@pytest.fixture
def ws(tmp_path: Path, sqlite_url: str) -> Iterator[Workspace]:
    workspace = make_workspace(tmp_path, sqlite_url)
    yield workspace
    workspace.dispose()


@pytest.mark.slow
def test_no_canary_secret_or_patient_value_reaches_logs_database_or_artifacts(
    ws: Workspace, meridian_sandbox: SandboxPortal, monkeypatch: pytest.MonkeyPatch
) -> None:
    portal = meridian_sandbox
    state = portal.state
    canaries = Canaries()

    # -- the canary account: its password, TOTP secret and every session id the portal hands out
    username = f"canary-{uuid.uuid4().hex[:10]}"
    password = f"Cnry-{uuid.uuid4().hex[:12]}-pw!"
    totp_secret = pyotp.random_base32()
    state.add_account(username, password, totp_secret=totp_secret)
    account = "acct-canary"
    ws.vault().add_account(
        "meridian",
        account,
        username=username,
        password=password,
        second_factor="totp",
        totp_secret=totp_secret,
        portal_url=portal.url,
    )
    canaries.add("username", username)
    canaries.add("password", password)
    canaries.add("totp_secret", totp_secret)
    canaries.add("totp_secret (spaced)", " ".join(totp_secret[i : i + 4] for i in range(0, 32, 4)))
    session_ids: list[str] = []
    new_session = state.sessions.new

    def remembered_session() -> Any:
        made = new_session()
        session_ids.append(made.id)
        return made

    monkeypatch.setattr(state.sessions, "new", remembered_session)

    # -- the canary patient (an apostrophe in the name: HTML escapes it two ways)
    first, last = f"Zeb{_letters(6)}", f"O'Canary{_letters(6)}"
    member_id = f"ZQ{random.randrange(10**8, 10**9)}"
    dob = date(1925, random.randint(1, 12), random.randint(1, 28))  # before any seeded patient's
    patient = state.add_patient(first_name=first, last_name=last, member_id=member_id, date_of_birth=dob)
    assert isinstance(patient, Patient)
    canaries.add("patient name", patient.name)
    canaries.add("patient name (last, first)", f"{last}, {first}")
    canaries.add("first name", first)
    canaries.add("last name", last)
    canaries.add("last name (no apostrophe)", last.replace("'", ""))
    canaries.add("member id", member_id)
    canaries.add_date("date of birth", dob)

    paid = state.add_claim("Paid", patient=patient)
    denied = [state.add_claim("Denied", patient=patient) for _ in range(3)]
    pa = state.add_pa("approved", patient=patient)
    outputs: list[WorkerRun] = []

    def appeal(claim_number: str) -> int:
        [item_id] = (
            ws.queue().enqueue([appeal_item(ws, "meridian", account, claim_number, claim_number)]).queued
        )
        return item_id

    # 1. everything recorded: status reads showing the patient, a PA, an appeal whose review shows them
    status_ids = enqueue_status(ws, "meridian", account, [paid.claim_number, denied[0].claim_number])
    pa_ids = ws.queue().enqueue([_pa_item(account, pa.pa_number)]).queued
    first_appeal = appeal(denied[0].claim_number)
    outputs.append(run_worker(ws, record="always"))
    # 2. the portal records a submit and answers 502: a failure bundle taken on the review page,
    #    then the retry reconciles from the history
    state.update_knobs(record_then_fail="502")
    failed_answer = appeal(denied[1].claim_number)
    for _ in range(3):  # the retry falls due within the run, or else for the next one
        outputs.append(run_worker(ws, record="failures"))
        if all_final(ws, [failed_answer]):
            break
    # 3. a redesign: the wizard is not where the bot expects it, the run goes to a person
    state.update_knobs(redesign="renamed")
    redesigned = appeal(denied[2].claim_number)
    outputs.append(run_worker(ws, record="failures"))
    state.update_knobs(redesign="none", record_then_fail="none")

    assert all(r.returncode == 0 for r in outputs), [r.describe() for r in outputs]
    states = {r["id"]: r["state"] for r in item_rows(ws)}
    why = "\n".join(f"{r['id']} {r['state']}: {r['last_error']}" for r in item_rows(ws))
    assert [states[i] for i in [*status_ids, *pa_ids, first_appeal, failed_answer]] == ["done"] * 5, why
    assert states[redesigned] == "needs_human", why
    assert session_ids, "the portal handed out no session: the flow did not log in"
    for number, sid in enumerate(session_ids):
        canaries.add(f"session cookie {number}", sid)

    # -- the scan ------------------------------------------------------------------------------
    scan = Scan(canaries)
    for number, run in enumerate(outputs):
        scan.text(f"worker {number} stderr (logs)", run.stderr)
        scan.text(f"worker {number} stdout", run.stdout)
    rows = scan.database(ws.engine)
    files = scan.tree(ws.artifacts)
    scan.tree(ws.tmp)  # whatever a worker left in its temporary folder
    assert not scan.hits, f"{len(scan.hits)} canary hits:\n{scan.report()}"

    # -- and the scan was not of nothing
    assert rows["audit_events"] > 0 and rows["runs"] >= 6 and rows["submissions"] >= 2, rows
    assert sum(len(r.log_lines()) for r in outputs) > 20
    bundles = [p.parent for p in files if p.name == "bundle.json"]
    traces = [b / "trace.zip" for b in bundles if (b / "trace.zip").exists()]
    hars = [b / "network.har" for b in bundles if (b / "network.har").exists()]
    assert len(traces) >= 5 and len(hars) >= 5, bundles
    for trace in traces:
        with zipfile.ZipFile(trace) as archive:
            assert "trace.trace" in archive.namelist(), archive.namelist()
            assert archive.testzip() is None
    masked = [h for h in hars if "[redacted]" in h.read_text(encoding="utf-8")]
    assert masked, "no HAR had anything scrubbed: the canaries never reached a recorded page"
    assert any(p.suffix == ".html" and "evidence" in p.parts for p in files), "no evidence HTML"
    failed_bundles = [json.loads((b / "bundle.json").read_text())["outcome"] for b in bundles]
    assert "failed" in failed_bundles and "ok" in failed_bundles, failed_bundles


# -- every patient field, both redesigns, two kinds of portal ------------------------------------


@dataclass(frozen=True)
class CanaryPatient:
    """One canary patient and the claim and authorization shown for them, each value unique."""

    first: str
    last: str
    member_id: str
    dob: date
    service_date: date  # a claim's date of service; RxPress's fill date
    rx_number: str  # RxPress keys claims by it
    drug: str  # RxPress's claim and PA pages; Meridian shows it as the PA's service
    explanation: str  # typed into the appeal form, three lines

    @classmethod
    def make(cls, rng: random.Random) -> CanaryPatient:
        def letters(n: int) -> str:
            return "".join(rng.choices(string.ascii_lowercase, k=n))

        return cls(
            first=f"Zeb{letters(6)}",
            last=f"O'Canary{letters(6)}",  # an apostrophe: HTML escapes it two ways
            member_id=f"ZQ{rng.randrange(10**8, 10**9)}",
            dob=date(1925, rng.randint(1, 12), rng.randint(1, 28)),  # before any seeded patient's
            service_date=date(2019, rng.randint(1, 12), rng.randint(1, 28)),
            rx_number=f"8{rng.randrange(10**5, 10**6)}",
            drug=f"Canarydrug{letters(6)} 40 mg tablet",
            explanation=(
                f"Canary reason one {letters(8)}: the member tried two alternatives.\n"
                f"Canary reason two {letters(8)}: both failed within 30 days.\n"
                f"Canary reason three {letters(8)}: see the prescriber's letter."
            ),
        )

    def register(self, canaries: Canaries, payer: str) -> None:
        canaries.add("patient name", f"{self.first} {self.last}")
        canaries.add("patient name (last, first)", f"{self.last}, {self.first}")
        canaries.add("first name", self.first)
        canaries.add("last name", self.last)
        canaries.add("last name (no apostrophe)", self.last.replace("'", ""))
        canaries.add("member id", self.member_id)
        canaries.add_date("date of birth", self.dob)
        canaries.add_date("date of service / fill date", self.service_date)
        canaries.add("drug", self.drug)
        canaries.add("drug (its name alone)", self.drug.split()[0])
        canaries.add_lines("explanation", self.explanation)
        if payer == "rxpress":
            canaries.add("Rx number", self.rx_number)


def _seed(state: Any, payer: str, who: CanaryPatient, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """The canary patient's claim (denied, so appealable) and authorization; their numbers."""
    patient = state.add_patient(
        first_name=who.first, last_name=who.last, member_id=who.member_id, date_of_birth=who.dob
    )
    if payer == "rxpress":
        # the sandbox derives a claim's drug from a fixed list; the canary drug is the whole list
        monkeypatch.setattr("sandbox.rxpress.formats.DRUGS", (who.drug,))
        claim = state.add_claim(
            "REJECTED",
            patient=patient,
            claim_number=who.rx_number,
            service_date=who.service_date,
            ncpdp=("70",),  # not covered: a reject a redetermination can take
        )
    else:
        claim = state.add_claim("Denied", patient=patient, service_date=who.service_date)
    pa = state.add_pa(None, patient=patient, service=who.drug)
    return claim.claim_number, pa.pa_number


def _items(ws: Workspace, payer: str, account: str, claim: str, pa: str, who: CanaryPatient) -> list[Any]:
    """A claim status check, an authorization check and an appeal; keys and letter carry no canary."""
    from bot.models import NewItem, WorkKind

    fill = {"fill_date": who.service_date.isoformat()} if payer == "rxpress" else {}
    appeal = appeal_item(ws, payer, account, "canary-letter", f"{payer}-canary-appeal")
    payload = {**appeal.payload, "claim_number": claim, "explanation": who.explanation, **fill}
    return [
        NewItem(
            kind=WorkKind.CLAIM_STATUS,
            payer=payer,
            account=account,
            payload={"claim_number": claim, **fill},
            idempotency_key=f"{payer}-canary-status",
        ),
        NewItem(
            kind=WorkKind.PA_STATUS,
            payer=payer,
            account=account,
            payload={"pa_number": pa},
            idempotency_key=f"{payer}-canary-pa",
        ),
        appeal.model_copy(update={"payload": payload}),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("redesign", ["cosmetic", "renamed"])
@pytest.mark.parametrize("payer", ["rxpress", "meridian"])
def test_no_patient_field_survives_a_recorded_run_under_either_redesign(
    payer: str, redesign: str, ws: Workspace, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    portal: SandboxPortal = request.getfixturevalue(f"{payer}_sandbox")
    state = portal.state
    who = CanaryPatient.make(random.Random(f"canary:{payer}:{redesign}"))  # the same canaries every run
    canaries = Canaries()
    who.register(canaries, payer)
    claim, pa = _seed(state, payer, who, monkeypatch)

    login = state.add_account(totp_secret=pyotp.random_base32() if payer == "meridian" else None)
    account = "acct-canary"
    ws.vault().add_account(
        payer,
        account,
        username=login.username,
        password=login.password,
        second_factor="totp" if payer == "meridian" else "out_of_band",
        totp_secret=login.totp_secret,
        portal_url=portal.url,
    )
    ws.read_codes_from(state)  # RxPress e-mails its login code
    intake = ws.queue().enqueue(_items(ws, payer, account, claim, pa, who))
    assert intake.ok and len(intake.queued) == 3, intake.rejected
    ids = intake.queued

    state.update_knobs(redesign=redesign)
    worker = run_worker(ws, record="always")
    state.update_knobs(redesign="none")
    report_path = ws.root / "report.html"
    report = run_cli(ws, "report", "--since", "24h", "--out", str(report_path))

    assert worker.returncode == 0, worker.describe()
    assert report.returncode == 0, report.describe()
    why = "\n".join(f"{r['id']} {r['state']}: {r['last_error']}" for r in item_rows(ws))
    expected = "done" if redesign == "cosmetic" else "needs_human"  # renamed: every item fails
    assert [r["state"] for r in item_rows(ws, ids)] == [expected] * 3, why

    scan = Scan(canaries)
    for name, run in (("worker", worker), ("report command", report)):
        scan.text(f"{name} stderr (logs)", run.stderr)
        scan.text(f"{name} stdout", run.stdout)
    rows = scan.database(ws.engine, skip=frozenset({PAYLOAD_COLUMN}))
    files = scan.tree(ws.artifacts)
    scan.file(str(report_path), report_path.read_bytes())
    scan.tree(ws.tmp)
    assert not scan.hits, f"{len(scan.hits)} canary hits ({payer}, {redesign}):\n{scan.report()}"

    # -- and the scan was not of nothing: every item kept a bundle with a trace, a HAR and pictures
    assert rows["audit_events"] > 0 and rows["runs"] >= 3, rows
    bundles = [p.parent for p in files if p.name == "bundle.json"]
    assert len(bundles) >= 3, bundles
    for bundle in bundles:
        assert {"trace.zip", "network.har", "final.png"} <= {p.name for p in bundle.iterdir()}, bundle
    if redesign == "cosmetic":
        hars = " ".join((b / "network.har").read_text(encoding="utf-8") for b in bundles)
        assert "[redacted]" in hars, "nothing was scrubbed: the canaries never reached a recorded page"
        assert any(p.suffix == ".html" and "evidence" in p.parts for p in files), "no evidence HTML"
    assert "<html" in report_path.read_text(encoding="utf-8").lower()


def _pa_item(account: str, pa_number: str) -> Any:
    from bot.models import NewItem, WorkKind

    return NewItem(
        kind=WorkKind.PA_STATUS,
        payer="meridian",
        account=account,
        payload={"pa_number": pa_number},
        idempotency_key=f"pa-{pa_number}",
    )


# -- the logging allowlist, for any event ----------------------------------------------------------

SECRET_CANARY = "CANARY-log-secret-7f3e9a"
PHI_CANARY = "CANARY-phi-member-51c2"  # never registered: only its key marks it as patient data
PROCESS_SECRETS.add(SECRET_CANARY)


class Opaque:
    """A value the JSON renderer can only show through its repr."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Opaque({self.text})"


def _texts() -> st.SearchStrategy[str]:
    plain = st.text(alphabet=string.ascii_letters + " :/-_", max_size=12)
    return st.one_of(
        plain,
        st.builds(lambda a, b: f"{a}{SECRET_CANARY}{b}", plain, plain),
        st.builds(lambda a: f"{a}{SECRET_CANARY.upper()}", plain),
    )


_keys = st.sampled_from(sorted(SAFE_KEYS | {"exception", "dropped", "unknown_key", "payload", SECRET_CANARY}))
_phi_keys = st.sampled_from(sorted(REDACTED_KEYS))
_leaves = st.one_of(
    _texts(),
    st.integers(),
    st.none(),
    st.booleans(),
    st.builds(Opaque, _texts()),
    st.builds(lambda t: ValueError(t), _texts()),
    st.builds(lambda t: t.encode(), _texts()),
)


def _with_phi(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    plain = st.dictionaries(_keys, children, max_size=4)
    phi = st.dictionaries(
        _phi_keys,
        st.just(PHI_CANARY) | st.builds(lambda t: {"v": PHI_CANARY, "t": t}, _texts()),
        min_size=1,
        max_size=2,
    )
    return st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        plain,
        st.builds(lambda a, b: {**a, **b}, plain, phi),
    )


_values = st.recursive(_leaves, _with_phi, max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=st.dictionaries(_keys | _phi_keys, _values, max_size=6), message=_texts())
def test_no_log_event_renders_a_registered_secret_or_a_value_under_a_patient_key(
    event: dict[str, Any], message: str
) -> None:
    for fmt in ("json", "console"):
        out = io.StringIO()
        configure_logging("debug", fmt, stream=out)
        try:
            get_logger().info(message, **{k: v for k, v in event.items() if k != "event"})
        finally:
            structlog.reset_defaults()
        rendered = out.getvalue()
        assert rendered, "nothing was logged"
        low = rendered.lower()
        assert SECRET_CANARY.lower() not in low, rendered
        assert PHI_CANARY.lower() not in low, rendered
