"""The operator's path through the CLI, each command a real process: set up, add an account,
queue work (one bad line), drain it, read the results, verify the audit trail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.server import SandboxServer
from vault import Keyring


@pytest.fixture(scope="module")
def meridian_only() -> Iterator[SandboxServer]:
    with SandboxServer(["meridian"]) as server:
        yield server


def payerbot(
    env: dict[str, str], *args: str, stdin: str | None = None, timeout: int = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def test_set_up_queue_drain_and_read_back_from_the_command_line(
    tmp_path: Path, meridian_only: SandboxServer
) -> None:
    portal = meridian_only.portal("meridian")
    account = sorted(portal.accounts.values(), key=lambda a: a.account)[0]
    key_file = tmp_path / "vault.key"
    key_file.write_text(Keyring.generate().dump())
    key_file.chmod(0o600)
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "PAYERBOT_DATA_DIR": str(tmp_path / "data"),
        "PAYERBOT_VAULT_KEY_FILE": str(key_file),
        "PAYERBOT_LOG_FORMAT": "json",
    }
    env.pop("PAYERBOT_DATABASE_URL", None)

    assert payerbot(env, "db", "upgrade").returncode == 0
    secrets = {"username": account.username, "password": account.password, "totp_secret": account.totp_secret}
    added = payerbot(
        env,
        "vault",
        "add",
        "meridian",
        "ops",
        "--url",
        meridian_only.url("meridian"),
        "--stdin-json",
        stdin=json.dumps(secrets),
    )
    assert added.returncode == 0, added.stderr
    listed = payerbot(env, "vault", "list", "--json")
    assert account.password not in listed.stdout and account.totp_secret not in listed.stdout

    claims = sorted(portal.claims.values(), key=lambda c: c.claim_number)[:3]
    pa = sorted(portal.pas.values(), key=lambda p: p.pa_number)[0]
    lines = [
        json.dumps(
            {
                "kind": "claim_status",
                "payer": "meridian",
                "account": "ops",
                "payload": {"claim_number": c.claim_number},
            }
        )
        for c in claims
    ]
    lines.append(
        json.dumps(
            {
                "kind": "pa_status",
                "payer": "meridian",
                "account": "ops",
                "payload": {"pa_number": pa.pa_number},
            }
        )
    )
    lines.insert(
        2,
        json.dumps(
            {"kind": "claim_status", "payer": "meridian", "account": "ops", "payload": {"claim_number": "12"}}
        ),
    )
    work = tmp_path / "work.jsonl"
    work.write_text("\n".join(lines) + "\n")
    queued = payerbot(env, "enqueue", str(work))
    assert queued.returncode == 1  # one line was refused
    assert "line 3" in queued.stdout + queued.stderr and "claim_number" in queued.stdout + queued.stderr

    drained = payerbot(env, "worker", "--once", timeout=300)
    assert drained.returncode == 0, drained.stderr[-3000:]
    for line in drained.stderr.splitlines():
        if line.startswith("{"):
            assert account.password not in line
            assert set(json.loads(line)) >= {"event", "level", "timestamp"}

    status = json.loads(payerbot(env, "status", "--json").stdout)
    assert status["by_state"]["done"] == 4 and status["total"] == 4
    items = json.loads(payerbot(env, "queue", "list", "--json").stdout)
    by_number = {c.claim_number: c for c in claims}
    for item in items:
        shown = payerbot(env, "queue", "show", str(item["id"]), "--json")
        assert shown.returncode == 0
        detail = json.loads(shown.stdout)
        if detail["kind"] == "claim_status":
            truth = by_number[detail["payload"]["claim_number"]]
            assert detail["result"]["category"] == truth.category
    assert portal.login_posts[account.username] >= 1

    verified = payerbot(env, "audit", "verify")
    assert verified.returncode == 0 and "intact" in verified.stdout
