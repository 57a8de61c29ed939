"""An appeal's documents: only files inside PAYERBOT_DOCUMENTS_DIR, only the approved bytes.

An upstream row must not be able to send another file to a payer (the vault key, say): absolute
paths, ``..`` and symlinks leaving the folder are refused at intake and again before upload, every
document carries its SHA-256, the content must be of its declared media type and under the payer's
size limit, and the bytes that were hashed are the bytes the portal receives.
"""

from __future__ import annotations

import hashlib
import stat
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page
from sqlalchemy.engine import Engine

from bot.clock import ManualClock
from bot.db import WorkItem
from bot.documents import MAGIC, appeal_files, write_letter
from bot.errors import DocumentProblem, IntakeError
from bot.migrate import upgrade
from bot.models import AppealRequest, ItemState, NewItem, WorkKind
from bot.portal import Portal
from bot.queue import Queue
from bot.queue.intake import parse_row
from bot.queue.types import submission_reference
from bot.services import Services, build_services
from bot.settings import Settings
from bot.steps import StepRecorder
from bot.worker import Worker
from portals import check_request, get_portal, payer_ids
from portals.meridian import MeridianPortal
from sandbox import SandboxAccount
from tests.fixtures.sandbox import SandboxPortal, canary_account, canary_claim
from tests.queue_support import PAYER, add_account, appeal_fields
from vault import Keyring

VAULT_KEY = b"active:c2VjcmV0LXZhdWx0LWtleS1ub3QtYS1sZXR0ZXI=\n"  # a fake key file's content
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(17)
TEXT = b"Dear reviewer, please reconsider.\n"
MiB = 1024 * 1024


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _doc(path: str, data: bytes = b"%PDF-1.4\n", **extra: Any) -> dict[str, Any]:
    return {"path": path, "sha256": _digest(data), **extra}


def _payload(claim_number: str = "MH0000000001", **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "claim_number": claim_number,
        "reason": "medical_necessity",
        "explanation": "Documented need; see letter.",
        "letter": _doc("letter.pdf"),
        "approved_by": "R. Approver",
        **appeal_fields(datetime(2026, 1, 5, 8, tzinfo=UTC)),
    }
    payload.update(overrides)
    return payload


def _row(payload: dict[str, Any], key: str = "appeal-1") -> dict[str, Any]:
    return {
        "kind": "appeal_submission",
        "payer": PAYER,
        "account": "acct-1",
        "payload": payload,
        "idempotency_key": key,
    }


def _item(payload: dict[str, Any], key: str = "appeal-1") -> NewItem:
    return NewItem.model_validate(_row(payload, key))


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file outside the documents folder that must never reach a payer: a fake vault key."""
    folder = tmp_path / "etc"
    folder.mkdir()
    key = folder / "vault.key"
    key.write_bytes(VAULT_KEY)
    return key


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "documents"
    folder.mkdir()
    return folder


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Python's temporary folder for this test, so its private copies can be counted."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


# -- refused at intake: the reference itself ---------------------------------------------------


BAD_REFERENCES: dict[str, tuple[dict[str, Any], str]] = {
    "absolute": (_payload(letter=_doc("/etc/payerbot/vault.key")), "payload.letter.path"),
    "dot-dot": (_payload(letter=_doc("../vault.key")), "payload.letter.path"),
    "dot-dot-inside": (
        _payload(attachments=[_doc("notes.pdf"), _doc("letters/../../vault.key")]),
        "payload.attachments.1.path",
    ),
    "backslash": (_payload(letter=_doc("..\\vault.key")), "payload.letter.path"),
    "nul": (_payload(letter=_doc("letter\x00.pdf")), "payload.letter.path"),
    "control": (_payload(letter=_doc("letter\n.pdf")), "payload.letter.path"),
    "no-sha256": (_payload(letter={"path": "letter.pdf"}), "payload.letter.sha256"),
    "media-type": (
        _payload(attachments=[_doc("notes.pdf"), _doc("run.sh", media_type="text/x-shellscript")]),
        "payload.attachments.1.media_type",
    ),
}


@pytest.mark.parametrize(("payload", "field"), BAD_REFERENCES.values(), ids=BAD_REFERENCES.keys())
def test_intake_refuses_a_document_reference_with_the_field_named(
    payload: dict[str, Any], field: str
) -> None:
    with pytest.raises(IntakeError) as caught:
        parse_row(_row(payload))

    assert caught.value.field == field
    assert caught.value.message.startswith(field)
    assert "vault.key" not in caught.value.message  # the value itself is never echoed


def _upstream(engine: Engine, clock: ManualClock, key: str, payload: dict[str, Any]) -> int:
    """A row as an upstream system writes it: straight into work_items, state queued."""
    now = clock.now()
    with engine.begin() as conn:
        values = {"idempotency_key": key, "kind": "appeal_submission", "payer": PAYER, "account": "acct-1"}
        return int(
            conn.execute(
                sa.insert(WorkItem.__table__)
                .values(
                    **values, payload=payload, state="queued", not_before=now, created_at=now, updated_at=now
                )
                .returning(WorkItem.id)
            ).scalar_one()
        )


def test_an_upstream_row_with_a_bad_document_is_rejected_with_the_field_named(
    engine: Engine, queue: Queue, clock: ManualClock
) -> None:
    add_account(engine, "acct-1")
    bad = {
        _upstream(engine, clock, name, payload): field
        for name, (payload, field) in BAD_REFERENCES.items()
        if name != "nul" or engine.dialect.name == "sqlite"  # PostgreSQL's JSON cannot hold a NUL
    }
    good = _upstream(engine, clock, "u-good", _payload())

    batch = queue.lease_batch("w1", limit=1)

    assert batch is not None and [i.id for i in batch.items] == [good]
    for item_id, field in bad.items():
        view = queue.get(item_id)
        assert view.state is ItemState.REJECTED, (field, view.state)
        assert view.last_error is not None and view.last_error.startswith(field)


# -- refused at intake: where the reference leads ------------------------------------------------


def test_intake_refuses_a_symlink_that_leaves_the_documents_folder(
    engine: Engine, settings: Settings, docs: Path, outside: Path, clock: ManualClock
) -> None:
    add_account(engine, "acct-1")
    (docs / "letter.pdf").symlink_to(outside)
    (docs / "letters").symlink_to(outside.parent, target_is_directory=True)
    write_letter(docs, "fine.pdf", "An approved letter.")
    queue = Queue(
        engine, settings.model_copy(update={"documents_dir": docs}), clock=clock, check=check_request
    )
    key_digest = _digest(VAULT_KEY)  # the attacker knows the file's content, so its digest matches
    fine = _doc("fine.pdf", (docs / "fine.pdf").read_bytes())

    report = queue.enqueue(
        [
            _item(_payload(letter={"path": "letter.pdf", "sha256": key_digest}), "via-file-link"),
            _item(
                _payload(letter=fine, attachments=[{"path": "letters/vault.key", "sha256": key_digest}]),
                "via-folder-link",
            ),
            _item(_payload(letter=fine), "fine"),
            _item(_payload("MH0000000002", letter=_doc("not-yet-written.pdf")), "later"),  # one per claim
        ]
    )

    assert [(r.index, r.field) for r in report.rejected] == [
        (0, "payload.letter.path"),
        (1, "payload.attachments.0.path"),
    ]
    for rejection in report.rejected:
        assert "outside PAYERBOT_DOCUMENTS_DIR" in rejection.message
        assert str(outside.parent) not in rejection.message
    assert len(report.queued) == 2  # a file that is not there yet is checked again before upload


def test_intake_of_an_appeal_needs_the_documents_setting(
    engine: Engine, settings: Settings, clock: ManualClock
) -> None:
    add_account(engine, "acct-1")
    queue = Queue(
        engine, settings.model_copy(update={"documents_dir": None}), clock=clock, check=check_request
    )
    status = NewItem(
        kind=WorkKind.CLAIM_STATUS, payer=PAYER, account="acct-1", payload={"claim_number": "MH0000000002"}
    )

    report = queue.enqueue([_item(_payload()), status])

    assert [(r.index, r.field) for r in report.rejected] == [(0, "payload.letter")]
    assert "PAYERBOT_DOCUMENTS_DIR is not set" in report.rejected[0].message
    assert len(report.queued) == 1  # a status check needs no documents


# -- before upload ---------------------------------------------------------------------------------


def _request(docs: Path, name: str = "letter.pdf", data: bytes | None = None, **letter: Any) -> AppealRequest:
    """An approved appeal whose letter is ``docs/name`` (written here unless it exists)."""
    path = docs / name
    if data is not None:
        path.write_bytes(data)
    elif not path.exists() and not path.is_symlink():
        write_letter(docs, name, "An approved appeal letter.")
    digest = letter.pop("sha256", None) or _digest(path.read_bytes())
    return AppealRequest.model_validate(_payload(letter={"path": name, "sha256": digest, **letter}))


def test_a_symlink_planted_after_intake_is_refused_before_upload(
    docs: Path, outside: Path, scratch: Path
) -> None:
    request = _request(docs, sha256=_digest(VAULT_KEY))  # approved, then the file is swapped for a link
    (docs / "letter.pdf").unlink()
    (docs / "letter.pdf").symlink_to(outside)

    with pytest.raises(DocumentProblem) as caught:
        appeal_files(request, docs)

    assert caught.value.message.startswith("payload.letter.path")
    assert "outside PAYERBOT_DOCUMENTS_DIR" in caught.value.message
    assert str(docs) not in caught.value.message and str(outside.parent) not in caught.value.message
    assert list(scratch.iterdir()) == []  # nothing was copied


def test_the_private_copy_holds_the_approved_bytes_whatever_happens_to_the_original(
    docs: Path, scratch: Path
) -> None:
    request = _request(docs)
    approved = (docs / "letter.pdf").read_bytes()

    staged = appeal_files(request, docs)
    write_letter(docs, "letter.pdf", "A different letter, written after the check.")

    assert staged.letter.read_bytes() == approved
    assert staged.letter.name == "letter.pdf"  # the portal sees the approved file name
    assert staged.letter.parent != docs
    assert stat.S_IMODE(staged.letter.stat().st_mode) == 0o600
    assert stat.S_IMODE(staged.folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(staged.letter.parent.stat().st_mode) == 0o700
    staged.close()
    assert list(scratch.iterdir()) == []


def test_documents_with_the_same_name_in_two_folders_keep_their_own_bytes(docs: Path, scratch: Path) -> None:
    (docs / "a").mkdir()
    (docs / "b").mkdir()
    one, two = write_letter(docs / "a", "notes.pdf", "One."), write_letter(docs / "b", "notes.pdf", "Two.")
    request = _request(docs).model_copy(
        update={
            "attachments": [
                AppealRequest.model_validate(_payload(letter=_doc("a/notes.pdf", one.read_bytes()))).letter,
                AppealRequest.model_validate(_payload(letter=_doc("b/notes.pdf", two.read_bytes()))).letter,
            ]
        }
    )

    with appeal_files(request, docs) as files:
        assert [p.read_bytes() for p in files.attachments] == [one.read_bytes(), two.read_bytes()]
        assert [p.name for p in files.attachments] == ["notes.pdf", "notes.pdf"]
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "data", "media_type"),
    [
        ("letter.pdf", PNG, "application/pdf"),
        ("letter.pdf", TEXT, "application/pdf"),
        ("scan.png", b"%PDF-1.4\n", "image/png"),
        ("scan.tif", PNG, "image/tiff"),
    ],
)
def test_content_that_is_not_its_declared_media_type_is_refused(
    docs: Path, scratch: Path, name: str, data: bytes, media_type: str
) -> None:
    request = _request(docs, name, data, media_type=media_type)  # the digest matches: only the type is wrong

    with pytest.raises(DocumentProblem) as caught:
        appeal_files(request, docs)

    assert caught.value.message.startswith("payload.letter.media_type")
    assert name not in caught.value.message  # a file's name may carry a patient's name
    assert list(scratch.iterdir()) == []


def test_each_allowed_media_type_is_recognized_by_its_content(docs: Path, scratch: Path) -> None:
    samples = {
        "image/png": PNG,
        "image/jpeg": b"\xff\xd8\xff\xe0",
        "image/tiff": b"II*\x00",
        "application/pdf": b"%PDF-1.7",
    }
    assert set(samples) == set(MAGIC)
    for media_type, data in samples.items():
        with appeal_files(_request(docs, "doc", data, media_type=media_type), docs) as files:
            assert files.letter.read_bytes() == data


def test_a_changed_file_is_refused_by_its_digest(docs: Path, scratch: Path) -> None:
    request = _request(docs)
    write_letter(docs, "letter.pdf", "Not what was approved.")

    differs = r"^payload\.letter\.sha256: the file differs from the approved one$"
    with pytest.raises(DocumentProblem, match=differs):
        appeal_files(request, docs)


def test_a_file_over_the_payers_limit_is_refused(docs: Path, scratch: Path) -> None:
    limit = MeridianPortal.max_upload_bytes
    big = b"%PDF-1.4\n" + bytes(limit - 9 + 1)
    request = _request(docs, "big.pdf", big)
    assert len(big) == limit + 1

    too_large = r"^payload\.letter\.path: larger than the payer's limit of \d+ bytes$"
    with pytest.raises(DocumentProblem, match=too_large):
        appeal_files(request, docs, max_bytes=limit)
    with appeal_files(request, docs, max_bytes=limit + 1) as files:  # at the limit it goes
        assert files.letter.stat().st_size == limit + 1
    assert list(scratch.iterdir()) == []


def test_every_payer_declares_its_upload_limit() -> None:
    assert Portal.max_upload_bytes == 10 * MiB
    for payer in payer_ids():
        assert 0 < get_portal(payer).max_upload_bytes <= 100 * MiB, payer


def test_without_the_documents_setting_nothing_is_uploaded(docs: Path) -> None:
    with pytest.raises(DocumentProblem, match="PAYERBOT_DOCUMENTS_DIR is not set"):
        appeal_files(_request(docs), None)


# -- in real Chromium against the Meridian sandbox ---------------------------------------------------


@pytest.fixture
def signed_in(
    page: Page, meridian_sandbox: SandboxPortal, meridian_account: SandboxAccount
) -> MeridianPortal:
    """Meridian's page objects on a browser that holds a fresh session (signed in over plain HTTP)."""
    page.set_default_timeout(5_000)
    with httpx.Client(base_url=meridian_sandbox.url) as client:
        client.post(
            "/login", data={"username": meridian_account.username, "password": meridian_account.password}
        )
        code = pyotp.TOTP(meridian_account.totp_secret or "").now()
        assert client.post("/login/verify", data={"code": code}).headers["location"] == "/dashboard"
        session = client.cookies["mh_session"]
    page.context.add_cookies([{"name": "mh_session", "value": session, "url": meridian_sandbox.url}])
    return MeridianPortal(page, meridian_sandbox.url, StepRecorder(page))


def test_the_portal_receives_the_approved_bytes_when_the_original_is_swapped_after_the_check(
    signed_in: MeridianPortal, meridian_sandbox: SandboxPortal, docs: Path, scratch: Path
) -> None:
    claim = canary_claim(meridian_sandbox.state, "Denied")
    denied = datetime.now(UTC).date() - timedelta(days=10)  # within the payer's filing limit
    request = _request(docs).model_copy(update={"claim_number": claim.claim_number, "denial_date": denied})
    approved = _digest((docs / "letter.pdf").read_bytes())
    reference = f"PB-swap-{datetime.now(UTC):%H%M%S%f}"

    files = appeal_files(request, docs)
    swapped = write_letter(docs, "letter.pdf", "Swapped in between the check and the upload.")
    signed_in.submit_appeal(request, files, reference, lambda: None)

    [entry] = meridian_sandbox.state.ledger_entries(reference=reference)
    assert _digest(swapped.read_bytes()) != approved
    assert (entry.letter_filename, entry.letter_sha256) == ("letter.pdf", approved)
    files.close()
    assert list(scratch.iterdir()) == []


@pytest.fixture
def services(tmp_path: Path, docs: Path, meridian_sandbox: SandboxPortal) -> Iterator[tuple[Services, str]]:
    """One deployment (SQLite, vault, documents) with a Meridian account, for the real runner."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'payerbot.db'}",
        vault_key=Keyring.generate().dump(),  # type: ignore[arg-type]
        artifacts_dir=tmp_path / "artifacts",
        documents_dir=docs,
        retry_base_seconds=0.2,
        retry_max_seconds=1,
        action_timeout_ms=6_000,
        navigation_timeout_ms=8_000,
    )
    built = build_services(settings)
    upgrade(built.engine)
    login = canary_account(meridian_sandbox.state)
    built.vault.add_account(
        "meridian",
        login.account,
        username=login.username,
        password=login.password,
        second_factor="totp",
        totp_secret=login.totp_secret,
        portal_url=meridian_sandbox.url,
    )
    yield built, login.account
    built.engine.dispose()


def test_the_runner_uploads_private_copies_refuses_a_late_symlink_and_removes_the_copies(
    services: tuple[Services, str],
    meridian_sandbox: SandboxPortal,
    browser: Browser,
    docs: Path,
    outside: Path,
    scratch: Path,
) -> None:
    s, account = services
    good, linked = (canary_claim(meridian_sandbox.state, "Denied") for _ in range(2))
    write_letter(docs, "good.pdf", "Approved.")
    write_letter(docs, "linked.pdf", "Approved, then replaced by a link.")
    rows = [
        {
            **_row(
                _payload(
                    good.claim_number,
                    letter=_doc("good.pdf", (docs / "good.pdf").read_bytes()),
                    **appeal_fields(),  # approved now: within the payer's filing deadline
                ),
                "good",
            )
        },
        {
            **_row(
                _payload(linked.claim_number, letter=_doc("linked.pdf", VAULT_KEY), **appeal_fields()),
                "linked",
            )
        },
    ]
    report = s.queue.enqueue([NewItem.model_validate({**r, "account": account}) for r in rows])
    assert not report.rejected, report.rejected
    (docs / "linked.pdf").unlink()
    (docs / "linked.pdf").symlink_to(outside)  # planted after intake, with the approved digest

    Worker(s, browser).drain(until_settled=True)

    done, refused = (s.queue.get(i) for i in report.queued)
    assert done.state == ItemState.DONE, (done.last_error_kind, done.last_error)
    [entry] = meridian_sandbox.state.ledger_entries(reference=done.submission_reference)
    assert entry.letter_sha256 == _digest((docs / "good.pdf").read_bytes())
    assert refused.state == ItemState.FAILED
    assert refused.last_error is not None and refused.last_error.startswith("payload.letter.path")
    never_sent = submission_reference(refused.id, refused.idempotency_key)
    assert meridian_sandbox.state.ledger_entries(reference=never_sent) == []
    assert list(scratch.glob("payerbot-upload-*")) == []  # the private copies are gone once the run ended
