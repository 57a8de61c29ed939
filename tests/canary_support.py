"""Canaries and the scan that looks for them everywhere payerbot writes.

A canary is a value that exists nowhere but where the test put it: a portal password, a TOTP
secret, a session cookie, a patient's name, member id and date of birth. After real runs, every
place the bot writes (log lines, every database column outside the vault's ciphertext, every file
under the artifacts folder, every member of every zip, the decoded bodies of HAR files and every
base64 run in any of them) is searched for every spelling of every canary. A hit names the canary,
the spelling and where it was found.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import html
import io
import json
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import sqlalchemy as sa
from sqlalchemy.engine import Engine

SKIPPED_COLUMNS = frozenset({("vault_records", "ciphertext")})  # sealed: the one place secrets live
# what upstream wrote: the appeal's own explanation and claim, in clear (the README says who can read it)
PAYLOAD_COLUMN = ("work_items", "payload")
# a base64 run long enough to hold a canary; shorter ones are ordinary words and ids
_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{16,}={0,2}")


def text_spellings(value: str) -> set[str]:
    """The forms a value takes in HTML (both escapes of a quote), JSON, and URLs."""
    forms = {
        value,
        html.escape(value),
        html.escape(value).replace("&#x27;", "&#39;"),
        html.escape(value, quote=False),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value),
        quote_plus(value),
    }
    return {f for f in forms if f}


def date_spellings(value: date) -> set[str]:
    y, m, d = value.year, value.month, value.day
    return {
        value.isoformat(),
        f"{m:02d}/{d:02d}/{y}",
        f"{m}/{d}/{y}",
        f"{m:02d}-{d:02d}-{y}",
        f"{y}{m:02d}{d:02d}",
        quote(f"{m:02d}/{d:02d}/{y}"),
    }


@dataclass
class Canaries:
    """Named canary values and every spelling the scan looks for (matched case-insensitively)."""

    forms: dict[str, set[str]] = field(default_factory=dict)

    def add(self, name: str, value: str) -> None:
        self.forms.setdefault(name, set()).update(text_spellings(value))

    def add_date(self, name: str, value: date) -> None:
        self.forms.setdefault(name, set()).update(date_spellings(value))

    def add_lines(self, name: str, text: str) -> None:
        """Free text: the whole of it as typed, as a form sends it (CRLF), and each line alone."""
        self.add(name, text)
        self.add(f"{name} (CRLF)", text.replace("\n", "\r\n"))
        for number, line in enumerate(text.splitlines(), 1):
            self.add(f"{name} line {number}", line.strip())

    def needles(self) -> list[tuple[str, bytes]]:
        return sorted({(name, f.lower().encode()) for name, forms in self.forms.items() for f in forms})


@dataclass(frozen=True)
class Hit:
    canary: str
    spelling: str
    where: str
    context: str

    def __str__(self) -> str:
        return f"{self.canary} ({self.spelling!r}) in {self.where}: ...{self.context}..."


@dataclass
class Scan:
    canaries: Canaries
    hits: list[Hit] = field(default_factory=list)
    places: int = 0  # how many texts were searched, so a scan of nothing is seen

    def text(self, where: str, data: bytes | str) -> None:
        raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
        low = raw.lower()
        self.places += 1
        for name, needle in self.canaries.needles():
            at = low.find(needle)
            if at >= 0:
                context = raw[max(at - 40, 0) : at + len(needle) + 40].decode("utf-8", "replace")
                self.hits.append(Hit(name, needle.decode(), where, context))

    # -- files ---------------------------------------------------------------------------------

    def tree(self, root: Path) -> list[Path]:
        files = sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            self.file(str(path), path.read_bytes())
        return files

    def file(self, where: str, data: bytes) -> None:
        self.text(where, data)
        if zipfile.is_zipfile(io.BytesIO(data)):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for member in archive.namelist():
                    self.file(f"{where}!{member}", archive.read(member))
            return
        if where.endswith(".har") or where.endswith(".network") or where.endswith(".trace"):
            for text in _embedded_bodies(data):
                self.text(f"{where} (decoded body)", text)
        # any base64 anywhere (trace resources, data: URLs, bodies a scrubber took for binary)
        decoded = b"\n".join(_base64_runs(data))
        if decoded:
            self.text(f"{where} (base64 decoded)", decoded)

    # -- the database --------------------------------------------------------------------------

    def database(self, engine: Engine, *, skip: frozenset[tuple[str, str]] = frozenset()) -> dict[str, int]:
        """Every row of every table, every column but the vault's ciphertext (and ``skip``); rows per
        table."""
        meta = sa.MetaData()
        meta.reflect(engine)
        counted: dict[str, int] = {}
        with engine.connect() as conn:
            for table in meta.sorted_tables:
                rows = conn.execute(sa.select(table)).mappings().all()
                counted[table.name] = len(rows)
                for number, row in enumerate(rows):
                    for column, value in row.items():
                        if (table.name, column) in SKIPPED_COLUMNS | skip or value is None:
                            continue
                        self.text(f"db {table.name}[{number}].{column}", _as_text(value))
        return counted

    def report(self) -> str:
        return "\n".join(str(h) for h in self.hits[:40])


def _as_text(value: Any) -> bytes | str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def _embedded_bodies(data: bytes) -> Iterator[bytes]:
    """Base64 bodies inside a HAR or trace network log, decoded (a scrubber may miss them)."""
    for line in data.splitlines() or [data]:
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        yield from _walk_base64(doc)


def _base64_runs(data: bytes) -> Iterator[bytes]:
    """Every run of base64 (standard or URL-safe) in ``data``, decoded; runs that do not decode are
    skipped (most are ordinary identifiers)."""
    for match in _BASE64_RUN.finditer(data):
        run = match.group().rstrip(b"=")
        run = run[: len(run) - len(run) % 4]  # the whole quanta: a canary sits inside, not at a ragged end
        for alphabet in (None, b"-_"):
            with contextlib.suppress(binascii.Error, ValueError):
                yield base64.b64decode(run, altchars=alphabet, validate=True)
                break


def _walk_base64(doc: Any) -> Iterator[bytes]:
    if isinstance(doc, dict):
        if doc.get("encoding") == "base64" and isinstance(doc.get("text"), str):
            with contextlib.suppress(binascii.Error, ValueError):
                yield base64.b64decode(doc["text"], validate=False)
        for value in doc.values():
            yield from _walk_base64(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from _walk_base64(value)


def all_lines(outputs: Iterable[str]) -> str:
    return "\n".join(outputs)
