"""`payerbot` with its fault hook armed, for the crash tests: ``python tests/armed_payerbot.py worker
--once`` with ``PAYERBOT_FAULT=<point>:<action>[:<n>]`` set. The installed ``payerbot`` never arms
the hook, so the variable does nothing there."""

from __future__ import annotations

from bot import faults
from bot.cli import main

if __name__ == "__main__":
    faults.arm()
    main()
