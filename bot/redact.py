"""Scrubbing secrets and patient data out of text and bytes.

Two layers, both needed. Logs go through an allowlist of keys (``bot.logging``). Artifacts (HAR,
trace, DOM, evidence HTML) cannot be allowlisted, so they are scrubbed by value: every secret the
vault hands out and every patient value a page showed is registered here, in the spellings it can
take on the wire (HTML-escaped, JSON-escaped, URL-encoded, with CRLF or LF line breaks, other date
layouts), and replaced.

How a spelling is matched:

- A spelling with a letter and at least 4 characters (a name, a member id, a cookie) is found
  anywhere, even inside a longer word: such a string rarely occurs by chance, and one glued to a
  label ("IDMBR553", "OkaforJ") is still a leak.
- A spelling without letters (a one-time code, a numeric id, a date) or shorter than 4 characters
  (a surname like "Ng") is found only as a whole token: not where it is glued to another letter or
  digit, so a code never rewrites the digits of an appeal number ("123456" in "AP-91234567"). An
  escape before it (``%0A``, ``\\n``, ``\\u00e9``) does not glue: that is a separator on the wire.
  The price: a numeric secret written straight after a letter ("pw123456") is not found.
- A value of 1 character is ignored: it cannot be told apart from ordinary text.
- A multi-line value is also registered line by line, so a value split over page elements (or
  with its line breaks encoded some way not listed here) leaves no line behind.

Values registered with ``add`` are pinned: kept as long as the process runs (credentials, answers,
cookies of live sessions). ``release`` moves values that can no longer be written (a one-time code
after its login, the cookies of a replaced session) to a pool of ``MAX_RELEASED`` that forgets its
oldest first. Finding thousands of values in a large page stays fast: the values are indexed by
their first characters, only those whose prefix occurs in the text go into the pattern, and the
patterns are cached.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from functools import lru_cache
from typing import AnyStr, Generic
from urllib.parse import quote, quote_plus

MASK = "[redacted]"
MIN_LENGTH = 2  # a 1-character value is ignored
TOKEN_BELOW = 4  # spellings shorter than this (or without a letter) are matched as whole tokens
MAX_RELEASED = 20_000  # released values kept for scrubbing; the oldest are forgotten first
PREFIX = 6  # spellings at least this long are looked up by their first characters

_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_KEY_NOISE = re.compile(r"[\s_.\-]")

# JSON, query and form keys whose values are patient data wherever they appear, normalised by
# ``normalize_key`` so that lastName, last_name, Last-Name and LASTNAME are one key. From what the
# sandbox portals use (patient, member_id, date_of_birth, service_date, rx, fill, explanation) and
# the usual names of the same fields elsewhere.
PHI_KEYS = frozenset(
    {
        # the patient
        "patient",
        "patientname",
        "patientfirstname",
        "patientlastname",
        "patientdob",
        "member",
        "membername",
        "memberid",
        "membernumber",
        "subscriber",
        "subscribername",
        "subscriberid",
        "insuredid",
        "firstname",
        "lastname",
        "middlename",
        "fullname",
        "givenname",
        "familyname",
        "surname",
        "dob",
        "dateofbirth",
        "birthdate",
        "birthday",
        "ssn",
        "socialsecuritynumber",
        "address",
        "addressline1",
        "addressline2",
        "streetaddress",
        "street",
        "zip",
        "zipcode",
        "postalcode",
        "phone",
        "phonenumber",
        "telephone",
        "mobile",
        "email",
        # the care
        "dos",
        "dateofservice",
        "servicedate",
        "rx",
        "rxnumber",
        "prescriptionnumber",
        "fill",
        "filldate",
        "datefilled",
        "drug",
        "drugname",
        "medication",
        "prescriber",
        "prescribername",
        "diagnosis",
        "explanation",
    }
)


def normalize_key(key: object) -> str:
    """A key as PHI_KEYS spells it: lower case, without ``_``, ``-``, ``.`` or spaces."""
    return _KEY_NOISE.sub("", str(key).lower())


def is_patient_key(key: object) -> bool:
    return normalize_key(key) in PHI_KEYS


def scrub_json_keys(data: object, keys: Iterable[str] = PHI_KEYS) -> object:
    """Replace the values of patient-data keys anywhere in a JSON document, in any key style."""
    wanted = keys if isinstance(keys, frozenset) else frozenset(normalize_key(k) for k in keys)
    if isinstance(data, dict):
        return {
            k: (MASK if normalize_key(k) in wanted else scrub_json_keys(v, wanted)) for k, v in data.items()
        }
    if isinstance(data, list):
        return [scrub_json_keys(v, wanted) for v in data]
    return data


# -- spellings ------------------------------------------------------------------------------------


def _encoded(value: str) -> set[str]:
    """The forms one text takes in HTML, JSON and URLs."""
    escaped = html.escape(value)
    return {
        value,
        escaped,
        # templates escape a quote their own way: Jinja and MarkupSafe write &#39; and &#34;
        escaped.replace("&#x27;", "&#39;").replace("&quot;", "&#34;"),
        escaped.replace("&#x27;", "&apos;"),
        html.escape(value, quote=False),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value),  # a script's encodeURI: / kept, space as %20, LF as %0A
        quote(value, safe=""),  # encodeURIComponent
        quote_plus(value),  # a browser's form body: space as +, line breaks as %0D%0A
    }


def _line_breaks(value: str) -> set[str]:
    """A multi-line value with each line break a browser, a server or a page may write."""
    lines = _LINE_BREAK.split(value)
    if len(lines) == 1:
        return {value}
    escaped = [html.escape(line) for line in lines]
    return {sep.join(lines) for sep in ("\n", "\r\n", "\r", " ")} | {
        sep.join(escaped) for sep in ("&#10;", "&#13;&#10;", "<br>", "<br/>", "<br />")
    }


def _dates(value: str) -> set[str]:
    m = _ISO_DATE.match(value)
    if m:
        y, mo, d = (int(g) for g in m.groups())
    else:
        m = _US_DATE.match(value)
        if not m:
            return set()
        mo, d, y = (int(g) for g in m.groups())
    try:
        day = date(y, mo, d)
    except ValueError:
        return set()
    return {
        day.isoformat(),
        f"{mo:02d}/{d:02d}/{y}",
        f"{mo}/{d}/{y}",
        f"{mo:02d}-{d:02d}-{y}",
        f"{y}{mo:02d}{d:02d}",
        *(f"{day:%b} {dd}, {y}" for dd in {f"{d:02d}", str(d)}),
        *(f"{day:%B} {dd}, {y}" for dd in {f"{d:02d}", str(d)}),
    }


def spellings(value: str) -> set[str]:
    """The forms a value takes in HTML, JSON, URLs, with any line break and, for dates, other
    common layouts. Forms of fewer than MIN_LENGTH characters are left out."""
    texts = _line_breaks(value) | _dates(value)
    parts = value.split()
    if len(parts) > 1 and "\n" not in value:  # names: "Doe, Jane" and "Jane Doe" are the same person
        texts.add(f"{parts[-1]}, {' '.join(parts[:-1])}")
    forms: set[str] = set()
    for text in texts:
        forms |= _encoded(text)
    return {f for f in forms if len(f) >= MIN_LENGTH}


def _units(raw: str | date | datetime | None) -> list[str]:
    """What registering ``raw`` registers: the value, and each line of a multi-line value."""
    if raw is None:
        return []
    value = raw.isoformat() if isinstance(raw, date) else str(raw).strip()
    units = [value]
    if _LINE_BREAK.search(value):
        units += [line.strip() for line in _LINE_BREAK.split(value)]
    return [u for u in dict.fromkeys(units) if len(u) >= MIN_LENGTH]


# -- matching -------------------------------------------------------------------------------------


def _fold(text: str) -> str:
    """Lower case with the same length, so a match in the folded text is a span of the original."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in text)  # "İ" lowers to 2


_ENCODING_LETTERS = re.compile(r"%[0-9a-f]{2}|&#?\w+;|\\u[0-9a-f]{4}|\\.", re.IGNORECASE)


def _as_token(form: str) -> bool:
    """Whether a form is matched only as a whole token: short, or no letter of its own (the
    letters of an escape such as %2F or &#10; do not count)."""
    return len(form) < TOKEN_BELOW or not any(ch.isalpha() for ch in _ENCODING_LETTERS.sub("", form))


_ALNUM = r"[^\W_]"
# what may stand right before a token although it ends in a letter or digit: an escape
_ESCAPES = (r"%[0-9a-f]{2}", r"\\[nrtbf]", r"\\u[0-9a-f]{4}")


def _token_end(form: str) -> str:
    """The assertion after a whole-token form: nothing glued to it on either side."""
    escaped = re.escape(form)
    parts = []
    if form[0].isalnum():
        parts.append(
            "(?:" + "|".join([f"(?<!{_ALNUM}{escaped})", *(f"(?<={e}{escaped})" for e in _ESCAPES)]) + ")"
        )
    if form[-1].isalnum():
        parts.append(f"(?!{_ALNUM})")
    return "".join(parts)


class _Node:
    """A trie node: the next characters, and the end assertion of a form that ends here."""

    __slots__ = ("end", "next")

    def __init__(self) -> None:
        self.next: dict[str, _Node] = {}
        self.end: str | None = None


def _end(form: str) -> str:
    return _token_end(form) if _as_token(form) else ""


def _trie_pattern(forms: Iterable[str]) -> str:
    """One alternation of every form, shared prefixes factored out, the longest tried first (a
    flat alternation of thousands of literals is tried one by one at every position)."""
    root = _Node()
    for form in forms:
        node = root
        for ch in form:
            node = node.next.setdefault(ch, _Node())
        node.end = _end(form)
    return _emit(root)


def _emit(node: _Node) -> str:
    branches = []
    for ch in sorted(node.next):
        child, chain = node.next[ch], re.escape(ch)
        while len(child.next) == 1 and child.end is None:  # a run with no choice: one literal
            ((nxt, child),) = child.next.items()
            chain += re.escape(nxt)
        branches.append(chain + _emit(child))
    if node.end is not None:
        branches.append(node.end)  # after the longer forms: greedy
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


def _flat_pattern(forms: Iterable[str]) -> str:
    """The same alternation unfactored, for forms whose trie nests deeper than Python's parser goes."""
    return "|".join(re.escape(f) + _end(f) for f in sorted(forms, key=len, reverse=True))


@lru_cache(maxsize=256)
def _text_pattern(forms: frozenset[str]) -> re.Pattern[str]:
    try:
        return re.compile(_trie_pattern(forms))
    except RecursionError:  # ``re`` parses nested groups recursively
        return re.compile(_flat_pattern(forms))


@lru_cache(maxsize=256)
def _bytes_pattern(forms: frozenset[bytes]) -> re.Pattern[bytes]:
    # bytes as latin-1 text: one character per byte, so the same pattern builders serve
    texts = [f.decode("latin-1") for f in forms]
    try:
        return re.compile(_trie_pattern(texts).encode("latin-1"))
    except RecursionError:
        return re.compile(_flat_pattern(texts).encode("latin-1"))


class _Index(Generic[AnyStr]):
    """Folded spellings, counted (two values may share one) and found by their first characters."""

    def __init__(self) -> None:
        self.count: Counter[AnyStr] = Counter()
        self.by_prefix: dict[AnyStr, set[AnyStr]] = {}
        self.short: set[AnyStr] = set()

    def add(self, form: AnyStr) -> None:
        self.count[form] += 1
        if self.count[form] == 1:
            if len(form) < PREFIX:
                self.short.add(form)
            else:
                self.by_prefix.setdefault(form[:PREFIX], set()).add(form)

    def discard(self, form: AnyStr) -> None:
        self.count[form] -= 1
        if self.count[form] > 0:
            return
        del self.count[form]
        if len(form) < PREFIX:
            self.short.discard(form)
            return
        bucket = self.by_prefix[form[:PREFIX]]
        bucket.discard(form)
        if not bucket:
            del self.by_prefix[form[:PREFIX]]

    def candidates(self, low: AnyStr) -> set[AnyStr]:
        """The forms whose first characters occur in ``low``: the only ones the pattern needs."""
        found: set[AnyStr] = set()
        n = len(low)
        for keys, prefixed in ((self.short, False), (self.by_prefix, True)):
            if not keys:
                continue
            if len(keys) * (n + 20) < 140 * n:  # few keys: a C-speed search for each is cheaper
                hits: Iterable[AnyStr] = [k for k in keys if k in low]
            elif prefixed:
                hits = {g for i in range(n - PREFIX + 1) if (g := low[i : i + PREFIX]) in keys}
            else:
                hits = keys
            for key in hits:
                found |= self.by_prefix[key] if prefixed else {key}
        return found


def _byte_forms(form: str) -> set[bytes]:
    """A spelling as bytes: UTF-8 (and Latin-1, where a server uses it), lower-cased as bytes."""
    out = {form.encode("utf-8").lower(), _fold(form).encode("utf-8").lower()}
    with contextlib.suppress(UnicodeEncodeError):
        out |= {form.encode("latin-1").lower(), _fold(form).encode("latin-1").lower()}
    return out


def _masked(original: AnyStr, spans: Iterator[re.Match[AnyStr]], mask: AnyStr) -> AnyStr:
    pieces: list[AnyStr] = []
    at = 0
    for match in spans:
        start, end = match.span()
        pieces += [original[at:start], mask]
        at = end
    if not pieces:
        return original
    pieces.append(original[at:])
    return original[:0].join(pieces)


class Redactor:
    """The values to scrub (this redactor's and its parent's) and how to find them in a text."""

    def __init__(self, parent: Redactor | None = None, *, max_released: int = MAX_RELEASED) -> None:
        self.parent = parent
        self._lock = threading.RLock()
        self._forms: dict[str, tuple[frozenset[str], frozenset[bytes]]] = {}
        self._pinned: set[str] = set()
        self._released: OrderedDict[str, None] = OrderedDict()
        self._max_released = max_released
        self._text = _Index[str]()
        self._bytes = _Index[bytes]()

    def add(self, *values: str | date | datetime | None) -> None:
        """Pin values: they are scrubbed for as long as this redactor lives."""
        with self._lock:
            for unit in (u for raw in values for u in _units(raw)):
                self._released.pop(unit, None)
                self._register(unit)
                self._pinned.add(unit)

    def release(self, *values: str | date | datetime | None) -> None:
        """Values the process can no longer write: still scrubbed, until MAX_RELEASED newer
        released values push them out (oldest first)."""
        with self._lock:
            for unit in (u for raw in values for u in _units(raw)):
                self._pinned.discard(unit)
                self._register(unit)
                self._released[unit] = None
                self._released.move_to_end(unit)
            while len(self._released) > self._max_released:
                oldest, _ = self._released.popitem(last=False)
                self._unregister(oldest)

    def values(self) -> list[str]:
        """The registered values (not their spellings), this redactor's first, then its parent's."""
        with self._lock:
            own = [*self._pinned, *self._released]
        return own + (self.parent.values() if self.parent else [])

    def _register(self, unit: str) -> None:
        if unit in self._forms:
            return
        forms = spellings(unit)
        folded = frozenset(_fold(f) for f in forms)
        raw = frozenset(b for f in forms for b in _byte_forms(f))
        self._forms[unit] = (folded, raw)
        for form in folded:
            self._text.add(form)
        for data in raw:
            self._bytes.add(data)

    def _unregister(self, unit: str) -> None:
        folded, raw = self._forms.pop(unit)
        for form in folded:
            self._text.discard(form)
        for data in raw:
            self._bytes.discard(data)

    def _chain(self) -> Iterator[Redactor]:
        redactor: Redactor | None = self
        while redactor is not None:
            yield redactor
            redactor = redactor.parent

    def _text_matches(self, text: str) -> Iterator[re.Match[str]]:
        low = _fold(text)
        forms: set[str] = set()
        for redactor in self._chain():
            with redactor._lock:
                forms |= redactor._text.candidates(low)
        return _text_pattern(frozenset(forms)).finditer(low) if forms else iter(())

    def scrub(self, text: str) -> str:
        return _masked(text, self._text_matches(text), MASK) if text else text

    def scrub_bytes(self, data: bytes) -> bytes:
        if not data:
            return data
        low = data.lower()
        forms: set[bytes] = set()
        for redactor in self._chain():
            with redactor._lock:
                forms |= redactor._bytes.candidates(low)
        if not forms:
            return data
        return _masked(data, _bytes_pattern(frozenset(forms)).finditer(low), MASK.encode())

    def contains(self, text: str) -> bool:
        """Whether ``text`` holds a registered value (as ``scrub`` would find it)."""
        return bool(text) and next(self._text_matches(text), None) is not None


# Secrets the vault handed out in this process; every log line and artifact is scrubbed of them.
PROCESS_SECRETS = Redactor()
