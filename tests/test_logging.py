"""Logging set up while stderr was swapped (a CLI runner, a test's capture) keeps working after."""

from __future__ import annotations

import io
import json
import sys

import pytest

from bot.logging import configure_logging, get_logger


def test_logs_follow_stderr_after_the_one_in_force_at_set_up_was_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    during = io.StringIO()
    monkeypatch.setattr(sys, "stderr", during)
    configure_logging()
    during.close()  # as typer's CliRunner closes its stream when the command returns

    after = io.StringIO()
    monkeypatch.setattr(sys, "stderr", after)
    get_logger(payer="meridian").warning("still heard")

    [line] = after.getvalue().splitlines()
    assert json.loads(line)["event"] == "still heard"
