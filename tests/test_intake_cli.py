"""`payerbot enqueue`, `status` and `queue ...` as an operator runs them."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from bot.cli import app
from tests.queue_support import PAYER, add_account, appeal_payload


def _line(n: int, **overrides: object) -> str:
    row = {
        "kind": "claim_status",
        "payer": PAYER,
        "account": "acct-1",
        "payload": {"claim_number": f"MH{n:010d}"},
        "idempotency_key": f"c-{n}",
    }
    row.update(overrides)
    return json.dumps(row)


def test_enqueue_queues_good_lines_and_names_each_bad_line(
    cli: CliRunner, engine: Engine, tmp_path: Path
) -> None:
    add_account(engine, "acct-1")
    lines = [
        _line(1),
        "{not json",
        _line(2, payload={"claim_number": "bad"}),
        "",
        _line(3, kind="appeal_submission", payload={**appeal_payload(3), "approved_by": "  "}),
        _line(4, account="acct-missing"),
        _line(5),
        _line(1),
    ]
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(lines) + "\n")

    result = cli.invoke(app, ["enqueue", str(path)])

    assert result.exit_code == 1
    assert "line 2: not valid JSON" in result.stderr
    assert "line 3: payload.claim_number: not a" in result.stderr
    assert "line 5: payload.approved_by:" in result.stderr
    assert "line 6: account:" in result.stderr
    assert "line 8: already queued as item 1" in result.stdout
    assert "queued 2, duplicates 1, rejected 4" in result.stdout


def test_enqueue_of_a_clean_file_exits_zero_and_reads_stdin(cli: CliRunner, engine: Engine) -> None:
    add_account(engine, "acct-1")

    result = cli.invoke(app, ["enqueue", "-", "--json"], input=_line(1) + "\n" + _line(2) + "\n")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["queued"]) == 2 and report["rejected"] == []


def test_enqueue_of_a_missing_file_is_a_clean_error(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["enqueue", str(tmp_path / "nope.jsonl")])

    assert result.exit_code == 2
    assert "cannot read" in result.stderr and "Traceback" not in result.output


def test_status_and_list_report_the_queue_as_json(cli: CliRunner, engine: Engine) -> None:
    add_account(engine, "acct-1")
    cli.invoke(app, ["enqueue", "-"], input=_line(1) + "\n" + _line(2) + "\n")

    status = json.loads(cli.invoke(app, ["status", "--json"]).stdout)
    listed = json.loads(cli.invoke(app, ["queue", "list", "--state", "queued", "--json"]).stdout)

    assert status["by_state"]["queued"] == 2 and status["by_payer"] == {PAYER: {"queued": 2}}
    assert [row["id"] for row in listed] == [1, 2]


def test_show_retry_and_cancel_an_item(cli: CliRunner, engine: Engine) -> None:
    add_account(engine, "acct-1")
    cli.invoke(app, ["enqueue", "-"], input=_line(1) + "\n")

    shown = cli.invoke(app, ["queue", "show", "1"])
    refused = cli.invoke(app, ["queue", "retry", "1"])
    cancelled = cli.invoke(app, ["queue", "cancel", "1"])
    after = json.loads(cli.invoke(app, ["queue", "show", "1", "--json"]).stdout)

    assert shown.exit_code == 0 and "history" in shown.stdout and "queued" in shown.stdout
    assert refused.exit_code == 2 and "only needs_human, failed, rejected" in refused.stderr
    assert cancelled.exit_code == 0
    assert after["state"] == "cancelled"
    assert [e["to_state"] for e in after["history"]] == ["queued", "cancelled"]


def test_unknown_items_and_states_are_clean_errors(cli: CliRunner) -> None:
    missing = cli.invoke(app, ["queue", "show", "404"])
    bad_state = cli.invoke(app, ["queue", "list", "--state", "sleeping"])

    assert missing.exit_code == 2 and "no work item 404" in missing.stderr
    assert bad_state.exit_code == 2 and "unknown state 'sleeping'" in bad_state.stderr


def test_db_upgrade_is_safe_to_run_again(cli: CliRunner) -> None:
    result = cli.invoke(app, ["db", "upgrade"])

    assert result.exit_code == 0 and "up to date" in result.stdout
