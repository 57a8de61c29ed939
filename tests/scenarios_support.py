"""Builders shared by the scenario tests: a deployment on the sandbox, items, drains, and readers.

Each test module makes one deployment (``scenarios.catalog.workspace.Workspace``: SQLite, vault, documents,
artifacts) and runs the real worker in the session's Chromium against the session's sandbox.
Commands that start a browser of their own run as ``payerbot`` processes, configured only by
``PAYERBOT_*`` variables, since one thread cannot drive two sync Playwright instances.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser

from bot.documents import write_letter
from bot.evidence import sha256_file
from bot.models import AppealReason, NewItem, WorkKind
from bot.worker import DrainReport, Worker
from scenarios.catalog.workspace import Workspace
from tests.queue_support import appeal_fields

APPROVER = "Dana Reviewer, CPhT"


def env_of(ws: Workspace, **extra: str) -> dict[str, str]:
    """What a `payerbot` process needs to be this deployment (and nothing of the test's own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYERBOT_")}
    s = ws.settings
    env.update(
        {
            "HOME": str(ws.root),
            "PAYERBOT_DATA_DIR": str(ws.root),
            "PAYERBOT_DATABASE_URL": s.resolved_database_url,
            "PAYERBOT_VAULT_KEY_FILE": str(s.vault_key_file),
            "PAYERBOT_ARTIFACTS_DIR": str(s.resolved_artifacts_dir),
            "PAYERBOT_DOCUMENTS_DIR": str(s.documents_dir),
            "PAYERBOT_ACTION_TIMEOUT_MS": str(s.action_timeout_ms),
            "PAYERBOT_NAVIGATION_TIMEOUT_MS": str(s.navigation_timeout_ms),
            "PAYERBOT_LOG_FORMAT": "json",
            **extra,
        }
    )
    return env


def payerbot(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def claim_item(
    account: str, claim_number: str, *, payer: str = "meridian", key: str | None = None
) -> NewItem:
    return NewItem(
        kind=WorkKind.CLAIM_STATUS,
        payer=payer,
        account=account,
        payload={"claim_number": claim_number},
        idempotency_key=key or f"status-{claim_number}-{datetime.now(UTC).timestamp()}",
    )


def appeal_item(
    ws: Workspace, account: str, claim_number: str, *, explanation: str | None = None, payer: str = "meridian"
) -> NewItem:
    letter = write_letter(ws.documents, f"appeal-{claim_number}.pdf", f"Appeal of claim {claim_number}.")
    return NewItem(
        kind=WorkKind.APPEAL_SUBMISSION,
        payer=payer,
        account=account,
        payload={
            "claim_number": claim_number,
            "reason": AppealReason.MEDICAL_NECESSITY.value,
            "explanation": explanation or "The service was medically necessary; see the attached letter.",
            "letter": {"path": letter.name, "sha256": sha256_file(letter)},
            "approved_by": APPROVER,
            **appeal_fields(),
        },
        idempotency_key=f"appeal-{claim_number}",
    )


def enqueue(ws: Workspace, *items: NewItem) -> list[int]:
    report = ws.services.queue.enqueue(list(items))
    assert report.ok and len(report.queued) == len(items), report.rejected
    return report.queued


def drain(ws: Workspace, browser: Browser) -> DrainReport:
    """One batch: every item as its first attempt leaves it (retries are not waited for)."""
    return Worker(ws.services, browser).drain(max_batches=1)


def bundle_texts(folder: Path) -> Iterator[tuple[str, str]]:
    """Every file of a bundle as text, zip members (the trace) opened one by one."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    yield f"{path.name}:{member}", archive.read(member).decode("utf-8", "replace")
        else:
            yield str(path.relative_to(folder)), path.read_bytes().decode("utf-8", "replace")


def spellings_of(*values: Any) -> set[str]:
    """The forms a canary value could take in a file: as written, HTML- and URL-escaped, dates."""
    from bot.redact import spellings

    out: set[str] = set()
    for value in values:
        text = value.isoformat() if hasattr(value, "isoformat") else str(value)
        out |= {s for s in spellings(text) if len(s) >= 6}
    return out
