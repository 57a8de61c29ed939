"""Fault points for the crash tests of exactly-once submission, inert unless test code arms them.

``arm()`` reads ``PAYERBOT_FAULT=<point>:<action>[:<n>]``: the process then does ``exit``
(``os._exit``, no cleanup, as a crash) or ``stop`` (SIGSTOP itself, as a paused VM) the n-th time
(default first) it reaches the point. Points: before_intent, after_intent, after_click,
after_confirm. No production entry point calls ``arm()``: the crash tests start their workers
through ``tests/armed_payerbot.py``, so a variable set in a deployment's environment does nothing.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter

POINTS = frozenset({"before_intent", "after_intent", "after_click", "after_confirm"})
EXIT_CODE = 86
_seen: Counter[str] = Counter()
_armed: str | None = None  # the fault spec, once test code has armed the hook
BETWEEN_TRANSACTIONS = threading.Lock()
"""Held by the heartbeat while it writes. A simulated pause waits for it: stopped inside a write,
a process would hold SQLite's lock and block every other worker, which no lease can help (a real
pause there is the database's business: its busy timeout, then the error, not a double submit)."""


def arm(spec: str | None = None) -> None:
    """Turn the hook on with ``spec`` (default: ``PAYERBOT_FAULT``); test code only."""
    global _armed
    _armed = spec if spec is not None else os.environ.get("PAYERBOT_FAULT") or None
    _seen.clear()


def disarm() -> None:
    global _armed
    _armed = None
    _seen.clear()


def point(name: str) -> None:
    if not _armed:
        return
    wanted, _, rest = _armed.partition(":")
    if wanted != name:
        return
    action, _, nth = rest.partition(":")
    _seen[name] += 1
    if _seen[name] != int(nth or 1):
        return
    if action == "exit":
        os._exit(EXIT_CODE)
    if action == "stop":
        with BETWEEN_TRANSACTIONS:  # a beat in flight ends first: the pause falls between statements
            os.kill(os.getpid(), signal.SIGSTOP)
