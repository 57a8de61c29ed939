"""What recording every portal run costs: ``--record never`` vs ``failures`` (the default) vs
``always``, measured side by side in one run.

    .venv/bin/python bench/bench_recording.py [--items 12] [--rounds 3]

Each round queues the same claim status checks three times (one queue per mode, the same
Meridian sandbox, the same browser) and drains each with a worker, in turns, so machine load falls
on all modes alike. ``failures`` records a trace, a HAR and step screenshots for every run (a run
cannot know in advance that it will fail) and throws them away when it succeeds; ``always`` also
scrubs and keeps them. Prints seconds per item per mode and the ratios to ``never``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyotp

from bot.logging import configure_logging
from bot.migrate import upgrade
from bot.models import NewItem, WorkKind
from bot.recording.recorder import RecordMode
from bot.services import build_services
from bot.settings import Settings
from bot.worker import Worker, open_browser
from sandbox.server import SandboxServer
from vault import Keyring

MODES = (RecordMode.NEVER, RecordMode.FAILURES, RecordMode.ALWAYS)


def check(claim: str, tag: str) -> NewItem:
    return NewItem(
        kind=WorkKind.CLAIM_STATUS,
        payer="meridian",
        account="bench",
        idempotency_key=f"{tag}-{claim}",
        payload={"claim_number": claim},
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    configure_logging("warning")
    timings: dict[RecordMode, list[float]] = {m: [] for m in MODES}
    with SandboxServer(["meridian"]) as sandbox, tempfile.TemporaryDirectory() as tmp:
        portal = sandbox.portal("meridian")
        claims = sorted(portal.claims)[: args.items]
        key = Keyring.generate().dump()
        first = Settings(vault_key=key, database_url=f"sqlite:///{Path(tmp) / 'x.db'}")  # type: ignore[arg-type]
        with open_browser(first) as browser:
            for round_no in range(args.rounds):
                for mode in MODES:
                    work = Path(tmp) / f"{round_no}-{mode}"
                    settings = Settings(
                        vault_key=key,  # type: ignore[arg-type]
                        database_url=f"sqlite:///{work / 'payerbot.db'}",
                        artifacts_dir=work / "artifacts",
                        batch_size=args.items,
                    )
                    # a login of its own per queue: each queue's vault claims TOTP steps apart, and
                    # the portal refuses a code used twice
                    account = portal.add_account(totp_secret=pyotp.random_base32())
                    services = build_services(settings)
                    upgrade(services.engine)
                    services.vault.add_account(
                        "meridian",
                        "bench",
                        username=account.username,
                        password=account.password,
                        second_factor="totp",
                        totp_secret=account.totp_secret,
                        portal_url=sandbox.url("meridian"),
                    )

                    worker = Worker(services, browser, record=mode)
                    services.queue.enqueue([check(claims[0], f"{round_no}-{mode}-warm")])
                    worker.drain()  # the login and the first page, so they are not timed
                    services.queue.enqueue([check(c, f"{round_no}-{mode}-timed") for c in claims])
                    started = time.perf_counter()
                    report = worker.drain()
                    elapsed = time.perf_counter() - started
                    done = report.counts().get("done", 0)
                    if done == 0:
                        print(f"{mode}: nothing done in round {round_no}", file=sys.stderr)
                        return 1
                    timings[mode].append(elapsed / done)
                    services.engine.dispose()
    base = statistics.median(timings[RecordMode.NEVER])
    print(f"{'record':<10} {'s/item (median)':>16} {'vs never':>9}")
    for mode in MODES:
        median = statistics.median(timings[mode])
        print(f"{mode.value:<10} {median:>16.3f} {median / base:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
