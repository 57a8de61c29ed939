"""Fault points for the crash tests of exactly-once submission (off unless a test turns them on).

``PAYERBOT_FAULT=<point>:<action>[:<n>]`` makes the process ``exit`` (``os._exit``, no cleanup, as
a crash) or ``stop`` (SIGSTOP itself, as a paused VM) the n-th time (default first) it reaches the
point. Points: before_intent, after_intent, after_click, after_confirm.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

POINTS = frozenset({"before_intent", "after_intent", "after_click", "after_confirm"})
_seen: Counter[str] = Counter()


def point(name: str) -> None:
    spec = os.environ.get("PAYERBOT_FAULT")
    if not spec:
        return
    wanted, _, rest = spec.partition(":")
    if wanted != name:
        return
    action, _, nth = rest.partition(":")
    _seen[name] += 1
    if _seen[name] != int(nth or 1):
        return
    if action == "exit":
        os._exit(86)
    if action == "stop":
        os.kill(os.getpid(), signal.SIGSTOP)
