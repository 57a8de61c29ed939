"""One recorded run as an operator looks at it: its row in ``runs`` and, when kept, its bundle.

A run is named by its id (``20261129T161136-2-a29258``) or by a work item's id (``42``: that item's
newest run), which is what ``payerbot queue list`` and ``payerbot status`` lead to.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from bot.errors import NotFound
from bot.portal import ACTION_FOR_KIND
from bot.recording.baselines import Baselines
from bot.recording.fingerprint import FingerprintDiff, diff
from bot.recording.recorder import BUNDLE_FILE, Bundle
from bot.recording.store import RunStore

KIND_FOR_ACTION = {str(action): str(kind) for kind, action in ACTION_FOR_KIND.items()}


@dataclass(frozen=True)
class StepLine:
    """A step as both records keep it (the bundle has more fields, the light record these)."""

    index: int
    kind: str
    locator: str | None = None
    target: str | None = None
    outcome: str = "ok"
    error: str | None = None
    duration_ms: int = 0
    url_path: str | None = None
    screenshot: str | None = None

    @classmethod
    def of(cls, data: dict[str, Any]) -> StepLine:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def what(self) -> str:
        """What the step acted on, short enough for a line of a table."""
        text = self.target if self.kind == "navigate" or not self.locator else self.locator
        if self.target and self.kind == "expect":
            text = self.target  # a wait's locator is a long or-chain; its target names it
        text = text or ""
        return text if len(text) <= 72 else text[:69] + "..."


@dataclass
class RunView:
    row: dict[str, Any]
    bundle: Bundle | None = None
    folder: Path | None = None
    steps: list[StepLine] = field(default_factory=list)
    good_since: list[str] | None = None  # the page's last good look from runs after this one

    @property
    def id(self) -> str:
        return str(self.row["id"])

    @property
    def item_id(self) -> int | None:
        return self.row.get("item_id")

    @property
    def payer(self) -> str:
        return str(self.row["payer"])

    @property
    def account(self) -> str:
        return str(self.row["account"])

    @property
    def action(self) -> str:
        return str(self.row["action"])

    @property
    def kind(self) -> str:
        return self.bundle.info.kind if self.bundle else KIND_FOR_ACTION.get(self.action, self.action)

    @property
    def outcome(self) -> str:
        return str(self.row["outcome"])

    @property
    def error_kind(self) -> str | None:
        return self.row.get("error_kind")

    @property
    def error(self) -> str | None:
        return self.row.get("error")

    @property
    def replay_of(self) -> str | None:
        return self.row.get("replay_of")

    @property
    def light(self) -> dict[str, Any]:
        return self.row.get("steps") or {}

    @property
    def fingerprint(self) -> list[str]:
        if self.bundle is not None and self.bundle.fingerprint:
            return self.bundle.fingerprint
        return list(self.light.get("fingerprint") or [])

    @property
    def last_good(self) -> list[str] | None:
        """The last good look of the failing page: as it was when this run failed, else (when no
        good run had seen the page yet) from the good runs since."""
        found = self.light.get("last_good")
        return list(found) if found else self.good_since

    @property
    def url_path(self) -> str | None:
        if self.bundle is not None and self.bundle.url_path:
            return self.bundle.url_path
        failed = [s for s in self.steps if s.outcome == "failed"]
        return failed[-1].url_path if failed else None

    @property
    def payload_digest(self) -> str | None:
        return self.bundle.info.payload_digest if self.bundle else None

    @property
    def portal_url(self) -> str | None:
        return self.bundle.info.portal_url if self.bundle else None

    def change(self) -> FingerprintDiff | None:
        """How the failing page differs from its last good look, when both are known."""
        if self.last_good is None or not self.fingerprint:
            return None
        return diff(self.last_good, self.fingerprint)

    def file(self, key: str) -> Path | None:
        """A bundle file by its key in ``Bundle.files`` (trace, har, dom, screenshot)."""
        if self.bundle is None or self.folder is None or key not in self.bundle.files:
            return None
        path = self.folder / self.bundle.files[key]
        return path if path.is_file() else None

    def screenshots(self) -> list[Path]:
        if self.folder is None or not (self.folder / "steps").is_dir():
            return []
        return sorted((self.folder / "steps").glob("*.jpg"))

    def thumbnail(self) -> Path | None:
        """The picture of the moment it went wrong: the failed step's, else the run's last page."""
        if self.folder is None:
            return None
        failed = [s.screenshot for s in self.steps if s.outcome == "failed" and s.screenshot]
        final = self.bundle.files.get("screenshot") if self.bundle else None
        for name in [*reversed(failed), final]:
            if name and (self.folder / name).is_file():
                return self.folder / name
        shots = self.screenshots()
        return shots[-1] if shots else None

    def replay_commands(self) -> list[str]:
        """The exact commands that replay this run (offline only when its network log was kept)."""
        run = shlex.quote(self.id)
        out = [f"payerbot replay {run}"]
        if self.file("har") is not None:
            out.append(f"payerbot replay {run} --offline")
        return out


def load_run(engine: Engine, ref: str) -> RunView:
    """The run named by ``ref``: a run id, or a work item id for that item's newest run."""
    store = RunStore(engine)
    ref = ref.strip()
    if ref.isdigit():
        rows = store.list(item_id=int(ref), limit=1, replays=False) or store.list(item_id=int(ref), limit=1)
        if not rows:
            raise NotFound(f"no recorded runs of work item {ref} (a run is recorded when a worker works it)")
        row = rows[0]
    else:
        found = store.get(ref)
        if found is None:
            raise NotFound(f"no run '{ref}' (`payerbot scenarios list` shows the runs)")
        row = found
    return view_of(row, Baselines(engine))


def view_of(row: dict[str, Any], baselines: Baselines | None = None) -> RunView:
    view = RunView(row=row)
    folder = Path(row["bundle_path"]) if row.get("bundle_path") else None
    if folder is not None and (folder / BUNDLE_FILE).is_file():
        view.bundle = Bundle.load(folder)
        view.folder = folder
        view.steps = [StepLine.of(s.model_dump(mode="json")) for s in view.bundle.steps]
    else:
        view.steps = [StepLine.of(s) for s in (row.get("steps") or {}).get("steps", [])]
    if baselines is not None and view.outcome == "failed" and not view.light.get("last_good"):
        view.good_since = baselines.last_good(view.payer, view.url_path, view.fingerprint)
    return view
