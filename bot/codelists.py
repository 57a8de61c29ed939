"""The published code lists (X12 277, CARC, RARC, NCPDP reject codes), loaded at run time.

A copy ships in ``bot/codelists`` with its attribution (README.md there). A user with newer lists
points ``PAYERBOT_CODELISTS_DIR`` at a folder holding files of the same names; each file found there
replaces the shipped one.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path

from bot.errors import ConfigError
from bot.models import CodeSystem

SHIPPED_DIR = Path(__file__).parent / "codelists"

# Which files make up each code system; several files merge, later ones winning.
FILES: dict[CodeSystem, tuple[str, ...]] = {
    CodeSystem.X12_CATEGORY: (
        "claim_status_category_codes_hippo.csv",
        "claim_status_category_R_codes_vista.csv",
    ),
    CodeSystem.X12_STATUS: ("claim_status_codes_hippo.csv",),
    CodeSystem.CARC: ("carc_vista.csv",),
    CodeSystem.RARC: ("rarc_vista.csv",),
    CodeSystem.NCPDP_REJECT: ("ncpdp_reject_codes_vista.csv",),
}

STOP_COLUMNS = ("stop_date", "deactivation_date")
DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y")  # VistA's converted dates; hippo's as X12 printed them
LOCAL_COLUMN = "va_local_entry"  # VA-only codes in VistA's NCPDP list; some differ from NCPDP's only by case


@dataclass(frozen=True)
class Code:
    system: CodeSystem
    code: str
    description: str
    active: bool
    deactivated: date | None = None
    """The stop (deactivation) date the list gives; ``active`` is False whenever the list has one."""
    source: Path | None = field(default=None, compare=False)
    """The file the code was read from (a later file of the same system wins)."""


@dataclass
class CodeLists:
    """Code → description per code system."""

    codes: dict[CodeSystem, dict[str, Code]] = field(default_factory=dict)
    sources: dict[CodeSystem, list[Path]] = field(default_factory=dict)

    def get(self, system: CodeSystem, code: str) -> Code | None:
        known = self.codes.get(system, {})
        code = code.strip()
        return known.get(code) or known.get(code.upper())

    def describe(self, system: CodeSystem, code: str) -> str | None:
        found = self.get(system, code)
        return found.description if found else None

    def active_codes(self, system: CodeSystem) -> list[Code]:
        return [c for c in self.codes.get(system, {}).values() if c.active]

    def search(self, system: CodeSystem, words: str, limit: int = 20) -> list[Code]:
        """Codes whose description holds every word (case-insensitive), in the list's order."""
        wanted = words.casefold().split()
        found = []
        for code in self.codes.get(system, {}).values():
            text = code.description.casefold()
            if all(word in text for word in wanted):
                found.append(code)
                if len(found) >= limit:
                    break
        return found

    def __len__(self) -> int:
        return sum(len(v) for v in self.codes.values())


def _read(path: Path, system: CodeSystem) -> dict[str, Code]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {"code", "description"} <= set(reader.fieldnames):
                raise ConfigError(f"code list {path}: needs a header with 'code' and 'description'")
            out: dict[str, Code] = {}
            for lineno, row in enumerate(reader, start=2):
                if (row.get(LOCAL_COLUMN) or "").strip():
                    # the VA's own entries (*95, eT, ...) are no NCPDP codes, and upper-cased they
                    # would replace real ones (eT would describe ET, "M/I Quantity Prescribed")
                    continue
                code = (row.get("code") or "").strip().upper()
                if not code:
                    raise ConfigError(f"code list {path}, line {lineno}: empty code")
                stops = [(row.get(col) or "").strip() for col in STOP_COLUMNS]
                stop = next((value for value in stops if value), "")
                deactivated = _date(stop, path, lineno) if stop else None
                desc = (row.get("description") or "").strip()
                out[code] = Code(system, code, desc, active=not stop, deactivated=deactivated, source=path)
            return out
    except OSError as exc:
        raise ConfigError(f"code list {path}: cannot read ({exc.strerror})") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"code list {path}: not a UTF-8 CSV ({exc})") from None


def _date(text: str, path: Path, lineno: int) -> date:
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ConfigError(f"code list {path}, line {lineno}: stop date {text!r} is not YYYY-MM-DD or MM/DD/YYYY")


def load_codelists(override_dir: Path | None = None) -> CodeLists:
    if override_dir is not None and not override_dir.is_dir():
        raise ConfigError(f"PAYERBOT_CODELISTS_DIR: {override_dir} is not a directory")
    lists = CodeLists()
    for system, names in FILES.items():
        merged: dict[str, Code] = {}
        used: list[Path] = []
        for name in names:
            path = SHIPPED_DIR / name
            if override_dir is not None and (override_dir / name).is_file():
                path = override_dir / name
            merged.update(_read(path, system))
            used.append(path)
        lists.codes[system] = merged
        lists.sources[system] = used
    return lists


@cache
def shipped_codelists() -> CodeLists:
    return load_codelists(None)


def provenance(path: Path) -> str:
    """Where a shipped list came from: its row of the table in ``bot/codelists/README.md``; a
    user's own list (``PAYERBOT_CODELISTS_DIR``) is named as such."""
    if path.parent.resolve() != SHIPPED_DIR.resolve():
        return f"supplied by the user (PAYERBOT_CODELISTS_DIR={path.parent})"
    readme = SHIPPED_DIR / "README.md"
    try:
        lines = readme.read_text(encoding="utf-8").splitlines()
    except OSError:
        return "no provenance found (bot/codelists/README.md is missing)"
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and cells[0] == path.name:
            what, origin, licence = cells[2], cells[3], cells[4]
            return re.sub(r"\s+", " ", f"{what}; from {origin}; licence {licence}")
    return f"no provenance row for {path.name} in bot/codelists/README.md"
