"""The published code lists (X12 277, CARC, RARC, NCPDP reject codes), loaded at run time.

A copy ships in ``bot/codelists`` with its attribution (README.md there). A user with newer lists
points ``PAYERBOT_CODELISTS_DIR`` at a folder holding files of the same names; each file found there
replaces the shipped one.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
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
LOCAL_COLUMN = "va_local_entry"  # VA-only codes in VistA's NCPDP list; some differ from NCPDP's only by case


@dataclass(frozen=True)
class Code:
    system: CodeSystem
    code: str
    description: str
    active: bool


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
                stopped = any((row.get(col) or "").strip() for col in STOP_COLUMNS)
                desc = (row.get("description") or "").strip()
                out[code] = Code(system, code, desc, active=not stopped)
            return out
    except OSError as exc:
        raise ConfigError(f"code list {path}: cannot read ({exc.strerror})") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"code list {path}: not a UTF-8 CSV ({exc})") from None


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
