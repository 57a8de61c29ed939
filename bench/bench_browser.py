"""What a headless run costs in Debian's full Chromium against Debian's headless shell, measured
side by side in one run.

    .venv/bin/python bench/bench_browser.py [--rounds 4] [--launches 5] [--pages 5]

Each round, in turns, each browser is launched ``--launches`` times; each launch opens a context
and loads the Meridian sandbox's login page and dashboard ``--pages`` times, then closes: the shape
of a worker run. CPU is the machine's busy time (``/proc/stat``) over the turn, so run it on a quiet
machine; turns alternate so that any load falls on both alike. Prints medians and the ratios to the
full browser. This is why ``bot.browser`` prefers the headless shell for headless runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from playwright.sync_api import Playwright, sync_playwright

from bot.browser import SYSTEM_CHROMIUM, SYSTEM_HEADLESS_SHELL, launch_args
from sandbox.server import SandboxServer


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot."""
    with open("/proc/stat", encoding="ascii") as stat:
        ticks = [int(x) for x in stat.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


def turn(
    playwright: Playwright, executable: Path, url: str, launches: int, pages: int
) -> tuple[float, float]:
    # the worker's own flags, with the executable under test in place of the one it would find
    kwargs = {**launch_args(headless=True), "executable_path": str(executable)}
    cpu, wall = busy_seconds(), time.perf_counter()
    for _ in range(launches):
        browser = playwright.chromium.launch(**kwargs)
        page = browser.new_context().new_page()
        for _ in range(pages):
            page.goto(f"{url}/login")
            page.goto(f"{url}/")
        browser.close()
    return time.perf_counter() - wall, busy_seconds() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--launches", type=int, default=5)
    parser.add_argument("--pages", type=int, default=5)
    args = parser.parse_args()
    browsers = {
        "full chromium": next((p for p in SYSTEM_CHROMIUM if p.is_file()), None),
        "headless shell": next((p for p in SYSTEM_HEADLESS_SHELL if p.is_file()), None),
    }
    missing = [name for name, path in browsers.items() if path is None]
    if missing:
        print(f"not installed: {', '.join(missing)} (apt-get install chromium chromium-headless-shell)")
        return 1
    wall: dict[str, list[float]] = {name: [] for name in browsers}
    cpu: dict[str, list[float]] = {name: [] for name in browsers}
    with SandboxServer(["meridian"]) as sandbox, sync_playwright() as playwright:
        url = sandbox.url("meridian")
        for _ in range(args.rounds):
            for name, path in browsers.items():
                assert path is not None
                w, c = turn(playwright, path, url, args.launches, args.pages)
                wall[name].append(w)
                cpu[name].append(c)
    base_wall, base_cpu = statistics.median(wall["full chromium"]), statistics.median(cpu["full chromium"])
    print(f"{args.launches} launches x {args.pages} page pairs per turn, {args.rounds} rounds")
    print(f"{'browser':<16} {'wall s':>8} {'cpu s':>8} {'wall vs full':>13} {'cpu vs full':>12}")
    for name in browsers:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        print(f"{name:<16} {w:>8.2f} {c:>8.2f} {w / base_wall:>13.2f} {c / base_cpu:>12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
