"""The operations report: one self-contained HTML page about the portal runs of a period.

Counts of runs by payer, kind and outcome; every failure with a thumbnail of the moment it went
wrong, its error, how its page changed from the last good look, and the exact replay command; every
submission with its confirmation number and the SHA-256 of its evidence. Images are inlined as
data URIs, so the file can be mailed or attached to a ticket and opens anywhere. Operators' replays
are counted apart: they are not the bot's work.
"""

from __future__ import annotations

import base64
import html
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.db import Submission, WorkItem
from bot.errors import ConfigError
from bot.queue.reads import Reads
from bot.queue.sql import Database
from bot.queue.types import ItemSummary
from bot.recording.store import RunStore
from scenarios.runs import RunView, view_of

OUTCOMES = ("ok", "failed", "dry_run", "stopped")
MAX_FAILURES = 100  # rows with inlined thumbnails; the newest are shown, the count says how many more
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``24h``, ``90m``, ``7d``, ``2w``, or an ISO date or time (UTC when no zone is given)."""
    now = now or datetime.now(UTC)
    m = _DURATION.match(text)
    if m:
        return now - timedelta(seconds=float(m[1]) * _UNIT[m[2]])
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"--since: '{text}' is neither a duration (24h, 7d, 90m) nor an ISO date") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


DUE_WITHIN = timedelta(days=7)  # an appeal whose filing deadline falls this close is listed first


@dataclass
class ReportData:
    since: datetime
    generated_at: datetime
    runs: list[RunView] = field(default_factory=list)
    replays: int = 0
    submissions: list[dict[str, Any]] = field(default_factory=list)
    due: list[ItemSummary] = field(default_factory=list)  # open appeals near their filing deadline

    @property
    def failures(self) -> list[RunView]:
        return [r for r in self.runs if r.outcome == "failed"]

    def counts(self) -> dict[tuple[str, str], Counter[str]]:
        out: dict[tuple[str, str], Counter[str]] = {}
        for run in self.runs:
            out.setdefault((run.payer, run.kind), Counter())[run.outcome] += 1
        return dict(sorted(out.items()))

    def error_kinds(self) -> Counter[str]:
        return Counter(r.error_kind or "unknown" for r in self.failures)


def collect(engine: Engine, since: datetime, now: datetime | None = None) -> ReportData:
    store = RunStore(engine)
    rows = store.list(since=since, limit=100_000)
    data = ReportData(since=since, generated_at=now or datetime.now(UTC))
    for row in rows:
        if row.get("replay_of"):
            data.replays += 1
        else:
            data.runs.append(view_of(row, store.baselines))
    subs = Submission.__table__
    items = WorkItem.__table__
    query = (
        sa.select(subs, items.c.payer, items.c.account, items.c.kind)
        .join(items, items.c.id == subs.c.item_id)
        .where(sa.or_(subs.c.started_at >= since, subs.c.confirmed_at >= since))
        .order_by(subs.c.started_at.desc())
    )
    with engine.connect() as conn:
        data.submissions = [dict(r) for r in conn.execute(query).mappings()]
    due_by = data.generated_at.date() + DUE_WITHIN
    data.due = Reads(Database(engine)).list(due_by=due_by, limit=1_000)
    return data


# -- HTML ---------------------------------------------------------------------------------------

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d1d1f; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #d0d0d7; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f6; } td.n { text-align: right; }
td.bad { color: #a0001c; font-weight: 600; }
img.thumb { width: 240px; border: 1px solid #ccc; }
code { font: 12px ui-monospace, monospace; white-space: nowrap; }
ul { margin: 0; padding-left: 16px; } li { white-space: nowrap; }
.muted { color: #6b6b76; }
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def _table(table_id: str, head: str, body: str) -> str:
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def data_uri(path: Path) -> str:
    mime = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _counts_table(data: ReportData) -> str:
    head = "".join(f"<th>{o.replace('_', ' ')}</th>" for o in OUTCOMES)
    rows = []
    for (payer, kind), counter in data.counts().items():
        cells = "".join(
            f'<td class="n{" bad" if o == "failed" and counter[o] else ""}">{counter[o]}</td>'
            for o in OUTCOMES
        )
        rows.append(
            f"<tr><td>{_e(payer)}</td><td>{_e(kind)}</td>{cells}<td class=n>{sum(counter.values())}</td></tr>"
        )
    body = "".join(rows) or f'<tr><td colspan="{len(OUTCOMES) + 3}" class=muted>no runs</td></tr>'
    return _table("counts", f"<th>payer</th><th>kind</th>{head}<th>total</th>", body)


def _errors_table(data: ReportData) -> str:
    rows = "".join(
        f"<tr><td>{_e(k)}</td><td class=n>{n}</td></tr>" for k, n in data.error_kinds().most_common()
    )
    if not rows:
        return "<p class=muted>no failures</p>"
    return _table("error-kinds", "<th>error kind</th><th>failures</th>", rows)


def _failure_row(run: RunView) -> str:
    thumb = run.thumbnail()
    image = (
        f'<img class="thumb" src="{data_uri(thumb)}" alt="run {_e(run.id)}: {_e(thumb.name)}">'
        if thumb is not None
        else "<span class=muted>no bundle kept</span>"
    )
    change = run.change()
    if change is not None and change.changed:
        page_change = "<ul>" + "".join(f"<li>{_e(line)}</li>" for line in change.lines()) + "</ul>"
    elif run.last_good is None:
        page_change = "<span class=muted>no last good look of this page</span>"
    else:
        page_change = "<span class=muted>same controls</span>"
    where = f"<div class=muted>on {_e(run.url_path)}</div>" if run.url_path else ""
    replay = "<br>".join(f"<code>{_e(c)}</code>" for c in run.replay_commands())
    return (
        f"<tr><td>{_e(_when(run.row.get('started_at')))}</td><td><code>{_e(run.id)}</code></td>"
        f"<td>{_e(run.item_id)}</td><td>{_e(run.payer)}<br>{_e(run.kind)}</td>"
        f"<td class=bad>{_e(run.error_kind)}</td><td>{_e(run.error)}{where}</td>"
        f"<td>{image}</td><td>{page_change}</td><td>{replay}</td></tr>"
    )


def _failures_table(data: ReportData) -> str:
    failures = data.failures
    if not failures:
        return "<p class=muted>no failed runs</p>"
    rows = "".join(_failure_row(r) for r in failures[:MAX_FAILURES])
    more = (
        f"<p class=muted>{len(failures) - MAX_FAILURES} older failures not shown: "
        "<code>payerbot scenarios list --failed</code></p>"
        if len(failures) > MAX_FAILURES
        else ""
    )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "when",
            "run",
            "item",
            "payer / kind",
            "error kind",
            "error",
            "screenshot",
            "page change",
            "replay",
        )
    )
    return f'<table id="failures"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{more}'


def _submissions_table(data: ReportData) -> str:
    if not data.submissions:
        return "<p class=muted>no submissions</p>"
    rows = []
    for s in data.submissions:
        evidence = "<br>".join(
            f"{label} <code>{_e(s[key])}</code>"
            for label, key in (("png", "evidence_png_sha256"), ("html", "evidence_html_sha256"))
            if s.get(key)
        )
        rows.append(
            f"<tr><td>{_e(s['item_id'])}</td><td>{_e(s['payer'])}</td><td><code>{_e(s['reference'])}</code></td>"
            f"<td>{_e(s['state'])}</td><td><strong>{_e(s['confirmation_id'])}</strong></td><td>{_e(s['via'])}</td>"
            f"<td>{evidence}</td><td>{_e(_when(s.get('confirmed_at') or s.get('started_at')))}</td></tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("item", "payer", "reference", "state", "confirmation", "via", "evidence SHA-256", "at")
    )
    return f'<table id="submissions"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _due_table(data: ReportData) -> str:
    """Open appeals (waiting, at work or with a person) whose filing deadline is near, nearest first."""
    if not data.due:
        return f"<p class=muted>no open appeal is due within {DUE_WITHIN.days} days</p>"
    today = data.generated_at.date()
    rows = "".join(
        f"<tr><td>{_e(i.id)}</td><td>{_e(i.payer)}</td><td>{_e(i.account)}</td><td>{_e(i.state)}</td>"
        f"<td>{_e(i.deadline)}</td><td class='n{' bad' if i.deadline and i.deadline <= today else ''}'>"
        f"{_e((i.deadline - today).days if i.deadline else '')}</td><td>{_e(i.last_error or '')}</td></tr>"
        for i in data.due
    )
    head = "".join(
        f"<th>{h}</th>" for h in ("item", "payer", "account", "state", "deadline", "days left", "last error")
    )
    return f'<table id="due"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def render(data: ReportData) -> str:
    failed = len(data.failures)
    summary = (
        f"{len(data.runs)} runs, <span class='{'bad' if failed else ''}'>{failed} failed</span>, "
        f"{len(data.submissions)} submissions; {data.replays} operator replays not counted"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>payerbot report since {_e(_when(data.since))}</title>
<style>{STYLE}</style></head><body>
<h1>payerbot: portal runs since {_e(_when(data.since))}</h1>
<p>Generated {_e(_when(data.generated_at))}. {summary}.</p>
<h2>Appeals due within {DUE_WITHIN.days} days</h2>{_due_table(data)}
<h2>Runs by payer, kind and outcome</h2>{_counts_table(data)}
<h2>Failures by error kind</h2>{_errors_table(data)}
<h2>Failures</h2>{_failures_table(data)}
<h2>Submissions</h2>{_submissions_table(data)}
</body></html>
"""


def write_report(engine: Engine, since: datetime, out: Path) -> ReportData:
    data = collect(engine, since)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(data), encoding="utf-8")
    out.chmod(0o600)  # it shows portal pages (masked) and error texts: as private as the bundles
    return data
