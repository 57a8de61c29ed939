"""Scrubbing secrets and patient data out of text and bytes.

Two layers, both needed. Logs go through an allowlist of keys (``bot.logging``). Artifacts (HAR,
trace, DOM, evidence HTML) cannot be allowlisted, so they are scrubbed by value: every secret the
vault hands out and every patient value a page showed is registered here, in the spellings it can
take on the wire (HTML-escaped, JSON-escaped, URL-encoded, other date formats), and replaced.
"""

from __future__ import annotations

import html
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from datetime import date, datetime
from urllib.parse import quote, quote_plus

MASK = "[redacted]"
MIN_LENGTH = 4  # shorter values would blank out ordinary words and digits
MAX_VALUES = 20_000  # a long-running worker forgets the oldest values first

_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")

# JSON keys whose values are patient data wherever they appear (SPA APIs, HAR bodies).
PHI_KEYS = frozenset(
    {
        "patient",
        "patient_name",
        "patientname",
        "member_name",
        "membername",
        "member_id",
        "memberid",
        "subscriber_id",
        "dob",
        "date_of_birth",
        "birth_date",
        "birthdate",
        "first_name",
        "last_name",
        "ssn",
    }
)


def spellings(value: str) -> set[str]:
    """The forms a value takes in HTML, JSON, URLs and, for dates, other common layouts."""
    escaped = html.escape(value)
    forms = {
        value,
        escaped,
        # templates escape a quote their own way: Jinja and MarkupSafe write &#39; and &#34;
        escaped.replace("&#x27;", "&#39;").replace("&quot;", "&#34;"),
        escaped.replace("&#x27;", "&apos;"),
        html.escape(value, quote=False),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value),
        quote_plus(value),
    }
    m = _ISO_DATE.match(value)
    if m:
        y, mo, d = m.groups()
        forms |= {f"{mo}/{d}/{y}", f"{int(mo)}/{int(d)}/{y}", f"{mo}-{d}-{y}", f"{y}{mo}{d}"}
    m = _US_DATE.match(value)
    if m:
        mo, d, y = m.groups()
        forms |= {f"{y}-{int(mo):02d}-{int(d):02d}", f"{int(mo):02d}/{int(d):02d}/{y}"}
    if " " in value:  # names: "Doe, Jane" and "Jane Doe" are the same person
        parts = value.split()
        forms.add(f"{parts[-1]}, {' '.join(parts[:-1])}")
    return {f for f in forms if len(f) >= MIN_LENGTH}


class Redactor:
    """A set of sensitive values and one compiled pattern that finds any of them."""

    def __init__(self, parent: Redactor | None = None) -> None:
        self._values: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None
        self._bytes_pattern: re.Pattern[bytes] | None = None
        self.parent = parent

    def add(self, *values: str | date | datetime | None) -> None:
        with self._lock:
            for raw in values:
                if raw is None:
                    continue
                value = raw.isoformat() if isinstance(raw, date | datetime) else str(raw).strip()
                for form in spellings(value):
                    self._values[form] = None
                    self._values.move_to_end(form)
            while len(self._values) > MAX_VALUES:
                self._values.popitem(last=False)
            self._pattern = self._bytes_pattern = None

    def values(self) -> list[str]:
        own = list(self._values)
        return own + (self.parent.values() if self.parent else [])

    def _compiled(self) -> tuple[re.Pattern[str] | None, re.Pattern[bytes] | None]:
        with self._lock:
            if self._pattern is None:
                vals = sorted(set(self.values()), key=len, reverse=True)  # longest first
                if vals:
                    self._pattern = re.compile("|".join(re.escape(v) for v in vals), re.IGNORECASE)
                    self._bytes_pattern = re.compile(
                        b"|".join(re.escape(v.encode()) for v in vals), re.IGNORECASE
                    )
            return self._pattern, self._bytes_pattern

    def invalidate(self) -> None:
        with self._lock:
            self._pattern = self._bytes_pattern = None

    def scrub(self, text: str) -> str:
        pattern, _ = self._compiled()
        return pattern.sub(MASK, text) if pattern else text

    def scrub_bytes(self, data: bytes) -> bytes:
        _, pattern = self._compiled()
        return pattern.sub(MASK.encode(), data) if pattern else data

    def contains(self, text: str) -> bool:
        pattern, _ = self._compiled()
        return bool(pattern and pattern.search(text))


def scrub_json_keys(data: object, keys: Iterable[str] = PHI_KEYS) -> object:
    """Replace the values of patient-data keys anywhere in a JSON document."""
    wanted = {k.lower() for k in keys}
    if isinstance(data, dict):
        return {
            k: (MASK if str(k).lower() in wanted else scrub_json_keys(v, wanted)) for k, v in data.items()
        }
    if isinstance(data, list):
        return [scrub_json_keys(v, wanted) for v in data]
    return data


# Secrets the vault handed out in this process; every log line and artifact is scrubbed of them.
PROCESS_SECRETS = Redactor()
