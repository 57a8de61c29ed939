"""Queue benchmark: lease + complete cost on SQLite and PostgreSQL at 1k, 10k and 100k queued items.

    .venv/bin/python bench/bench_queue.py [--sizes 1000 10000 100000] [--leases 40] [--no-postgres]

For each engine and size: a fresh database, 50 accounts, N items queued through ``Queue.enqueue``;
then ``--leases`` batches of 10 are leased, each item marked running and completed, the batch
released. Lease cost must not grow with the queue: the script prints the ratio of the per-lease
cost at the largest size to that at the smallest (it must stay under 1.5) and checks, with EXPLAIN,
that no statement a lease runs scans ``work_items``. Exit code 1 when either check fails.
All sizes of an engine are queued first and then measured in turns (a few leases each, five
rounds), side by side in this one run.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

import portals
from bot.db import Account, make_engine
from bot.migrate import upgrade
from bot.models import NewItem, WorkKind
from bot.queue import Queue
from bot.settings import Settings
from portals import check_request

PAYER = "meridian"
ACCOUNTS = 50
BATCH = 10
MAX_RATIO = 1.5
ROUNDS = 5
PG_ADMIN = os.environ.get("PAYERBOT_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@dataclass
class Result:
    engine: str
    size: int
    lease_median_ms: float
    lease_mean_ms: float
    complete_ms: float
    items_per_s: float
    enqueue_per_s: float


@contextmanager
def _database(kind: str) -> Iterator[Engine]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
            upgrade(engine)
            yield engine
            engine.dispose()
        return
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"payerbot_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = make_engine(PG_ADMIN.rsplit("/", 1)[0] + "/" + name)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _seed(engine: Engine, queue: Queue, size: int) -> float:
    with engine.begin() as conn:
        conn.execute(
            sa.insert(Account.__table__),
            [{"payer": PAYER, "account": f"acct-{a:02d}"} for a in range(ACCOUNTS)],
        )
    rows = (
        NewItem(
            kind=WorkKind.CLAIM_STATUS,
            payer=PAYER,
            account=f"acct-{n % ACCOUNTS:02d}",
            payload={"claim_number": f"MH{n:010d}"},
            idempotency_key=f"bench-{n}",
            priority=n % 3,
        )
        for n in range(size)
    )
    started = time.perf_counter()
    report = queue.enqueue(rows)
    elapsed = time.perf_counter() - started
    assert len(report.queued) == size, report.summary()
    with engine.connect() as conn:  # fresh planner statistics, as autovacuum would keep them
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    return size / elapsed


@dataclass
class Sample:
    """One queue of one size, measured a few leases at a time in rounds."""

    engine_name: str
    size: int
    queue: Queue
    enqueue_per_s: float
    lease_times: list[float] = field(default_factory=list)
    complete_time: float = 0.0
    done: int = 0
    elapsed: float = 0.0

    def run(self, leases: int) -> None:
        started = time.perf_counter()
        for _ in range(leases):
            t0 = time.perf_counter()
            batch = self.queue.lease_batch("bench")
            self.lease_times.append(time.perf_counter() - t0)
            assert batch is not None and len(batch.items) == BATCH
            t1 = time.perf_counter()
            for item in batch.items:
                self.queue.mark_running(item)
                self.queue.complete(item, canonical_status="pending", result={"n": item.id})
            self.complete_time += time.perf_counter() - t1
            self.done += len(batch.items)
            self.queue.release(batch)
        self.elapsed += time.perf_counter() - started

    def result(self) -> Result:
        return Result(
            engine=self.engine_name,
            size=self.size,
            lease_median_ms=statistics.median(self.lease_times) * 1000,
            lease_mean_ms=statistics.fmean(self.lease_times) * 1000,
            complete_ms=self.complete_time / self.done * 1000,
            items_per_s=self.done / self.elapsed,
            enqueue_per_s=self.enqueue_per_s,
        )


def _prepare(engine_name: str, engine: Engine, size: int) -> Sample:
    queue = Queue(engine, Settings(batch_size=BATCH, lease_seconds=300), check=check_request)
    enqueue_rate = _seed(engine, queue, size)
    for _ in range(3):  # warm the pool and the statement cache
        warm = queue.lease_batch("bench")
        assert warm is not None
        queue.release(warm)
    return Sample(engine_name, size, queue, enqueue_rate)


def _explain(engine: Engine) -> list[str]:
    """Run one lease while recording its statements, then EXPLAIN each; return the plans that scan."""
    captured: list[tuple[str, Any]] = []

    def record(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if not executemany and re.match(r"\s*(SELECT|UPDATE)", statement, re.I) and "work_items" in statement:
            captured.append((statement, parameters))

    queue = Queue(engine, Settings(batch_size=BATCH, lease_seconds=300), check=check_request)
    event.listen(engine, "before_cursor_execute", record)
    try:
        batch = queue.lease_batch("explain")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert batch is not None
    queue.release(batch)
    scans = []
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        for statement, parameters in captured:
            prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
            plan = "\n".join(
                " ".join(str(col) for col in row)
                for row in conn.exec_driver_sql(prefix + statement, parameters)
            )
            bad = (
                re.search(r"\bSCAN work_items\b(?! USING)", plan)
                if sqlite
                else "Seq Scan on work_items" in plan
            )
            if bad:
                scans.append(f"{' '.join(statement.split())[:160]}\n    {plan}")
        conn.rollback()
    return scans


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--leases", type=int, default=40, help="measured leases per size (of 10 items)")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    if args.leases * BATCH > min(args.sizes) // 2 or args.leases % ROUNDS:
        parser.error(
            f"--leases must be a multiple of {ROUNDS}, and --leases * {BATCH} under half the smallest size"
        )
    payer = f"{portals.get_portal(PAYER).__module__}.{portals.get_portal(PAYER).__name__}"
    engines = ["sqlite"]
    if not args.no_postgres:
        try:
            with sa.create_engine(PG_ADMIN).connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            engines.append("postgresql")
        except Exception as exc:
            print(f"note: PostgreSQL not reachable at {PG_ADMIN} ({type(exc).__name__}); SQLite only")

    results: list[Result] = []
    scans: dict[str, list[str]] = {}
    for name in engines:
        with ExitStack() as stack:
            samples = []
            for size in args.sizes:
                largest = stack.enter_context(_database(name))
                samples.append(_prepare(name, largest, size))
                print(f"  {name}: {size:,} items queued", file=sys.stderr)
            # Sizes take turns, a few leases each, so that load from elsewhere on the machine
            # falls on all of them alike instead of on whichever size ran during it.
            for _ in range(ROUNDS):
                for sample in samples:
                    sample.run(args.leases // ROUNDS)
            scans[name] = _explain(largest)
            results.extend(sample.result() for sample in samples)

    print(
        f"\npayer: {payer}; {ACCOUNTS} accounts; batches of {BATCH}; {args.leases} measured leases per row\n"
    )
    header = (
        "| engine | queued | lease ms (median) | lease ms (mean) | complete ms/item | items/s "
        "| enqueue items/s | lease cost vs smallest |"
    )
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    verdicts: list[str] = []
    ok = True
    for name in engines:
        rows = [r for r in results if r.engine == name]
        base = rows[0].lease_median_ms
        for r in rows:
            print(
                f"| {r.engine} | {r.size:,} | {r.lease_median_ms:.2f} | {r.lease_mean_ms:.2f} "
                f"| {r.complete_ms:.2f} | {r.items_per_s:,.0f} | {r.enqueue_per_s:,.0f} "
                f"| {r.lease_median_ms / base:.2f} |"
            )
        ratio = rows[-1].lease_median_ms / base
        ok &= ratio < MAX_RATIO
        verdicts.append(
            f"{name}: per-lease cost at {rows[-1].size:,} / at {rows[0].size:,} = {ratio:.2f} "
            f"({'ok' if ratio < MAX_RATIO else 'TOO HIGH'}: must stay under {MAX_RATIO})"
        )
        if scans.get(name):
            ok = False
            verdicts.append(f"{name}: EXPLAIN shows a lease statement scanning work_items:")
            verdicts.extend("  " + scan for scan in scans[name])
        else:
            verdicts.append(f"{name}: EXPLAIN: every lease statement on work_items uses an index")
    print()
    print("\n".join(verdicts))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
