"""Scrubbing recorded network logs and traces of cookies, credentials and patient data.

Playwright's traces and HAR files record request headers (cookies, authorization), request bodies
and every response body. Before a bundle is kept, each is rewritten:

- credential headers and cookies are masked;
- a body is read by its content type: a form (``application/x-www-form-urlencoded``) keeps its
  field names and loses every value; a multipart form keeps its parts' names and loses every
  part's file name, value and file content; JSON loses the values of patient-data keys (in any key style);
- a URL query, wherever it is written (a HAR's ``url`` and ``queryString``, a Referer, a trace's
  navigations and DOM snapshots), loses the values of patient-data keys;
- a base64 body (a HAR's binary content) and every trace resource are decoded, scrubbed by the same
  rules and encoded again; what is not text is scrubbed as bytes;
- and last, every registered value is replaced in every spelling (``bot.redact``).

Field names, URLs (but for masked query values) and methods stay, so a scrubbed HAR still replays
offline (``scenarios.replay``: requests match by URL and method).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zipfile
from pathlib import Path
from typing import Any

from bot.redact import MASK, Redactor, is_patient_key, scrub_json_keys

CREDENTIAL_HEADERS = frozenset(
    {"cookie", "set-cookie", "authorization", "proxy-authorization", "x-csrf-token", "x-xsrf-token"}
)
TEXT_SUFFIXES = (".trace", ".network", ".stacks", ".json", ".html", ".txt", ".css", ".js", ".xml")

# a query parameter in a URL, plain or itself percent-encoded (a return URL inside a query, whose
# value then runs to the end of that URL: masked a little wider than needed, never narrower)
_QUERY_PARAM = re.compile(
    r"(?P<lead>[?&;]|%3[fF]|%26)(?P<name>[A-Za-z0-9_.\-]+)(?P<eq>=|%3[dD])(?P<value>[^&#;\"'\s<>\\]*)"
)
FORM = "application/x-www-form-urlencoded"


def mask_query_values(text: str) -> str:
    """Mask the value of every patient-data parameter of every URL query in ``text``."""

    def masked(m: re.Match[str]) -> str:
        if not m["value"] or not is_patient_key(m["name"]):  # nothing to hide (a script's "?member=")
            return m[0]
        return f"{m['lead']}{m['name']}{m['eq']}{MASK}"

    return _QUERY_PARAM.sub(masked, text)


def _mask_urlencoded(text: str) -> str:
    """A form body with its field names kept and every value masked."""
    pairs = []
    for pair in text.split("&"):
        name, eq, _ = pair.partition("=")
        pairs.append(f"{name}={MASK}" if eq else name)
    return "&".join(pairs)


def _boundary(mime: str) -> str | None:
    m = re.search(r'boundary="?([^";]+)"?', mime, re.IGNORECASE)
    return m.group(1) if m else None


# a file's name may carry a patient's name ("okafor-appeal.pdf"): masked with the file's content
_FILENAME = re.compile(r'(filename\*?=)("[^"]*"|[^;\r\n]*)', re.IGNORECASE)


def _masked_filename(m: re.Match[str]) -> str:
    return f'{m.group(1)}"{MASK}"'


def _mask_multipart(text: str, mime: str) -> str:
    """A multipart body with each part's name and type kept, and its file name, value or file
    content masked. No boundary to split on: masked whole."""
    boundary = _boundary(mime)
    if boundary is None:
        return MASK
    delimiter = f"--{boundary}"
    chunks = text.split(delimiter)
    out = [chunks[0] if not chunks[0].strip() else MASK]  # the preamble, normally empty
    for chunk in chunks[1:]:
        if chunk.startswith("--"):  # the closing delimiter, then an epilogue
            out.append(chunk if not chunk[2:].strip() else f"--\r\n{MASK}")
            continue
        head, sep, body = chunk.partition("\r\n\r\n")
        if not sep:
            head, sep, body = chunk.partition("\n\n")
        if not sep:
            out.append(f"\r\n{MASK}\r\n")
            continue
        tail = "\r\n" if body.endswith("\r\n") else "\n" if body.endswith("\n") else ""
        out.append(f"{_FILENAME.sub(_masked_filename, head)}{sep}{MASK}{tail}")
    return delimiter.join(out)


def _scrub_json_text(text: str, redactor: Redactor) -> str:
    """Scrub a JSON document (or JSON lines) structurally, then by value."""
    lines = text.splitlines() if "\n" in text.strip() else [text]
    out = []
    for line in lines:
        try:
            data = json.loads(line)
        except ValueError:
            out.append(redactor.scrub(line))
            continue
        data = scrub_json_keys(scrub_network_entry(data, redactor))
        out.append(redactor.scrub(json.dumps(data, separators=(",", ":"))))
    return "\n".join(out)


def _kind(mime: str) -> str:
    return mime.split(";", 1)[0].strip().lower()


def scrub_body(text: str, mime: str, redactor: Redactor) -> str:
    """A request or response body scrubbed by what its content type says it is."""
    kind = _kind(mime)
    if kind == FORM:
        return redactor.scrub(_mask_urlencoded(text))
    if kind.startswith("multipart/"):
        return redactor.scrub(_mask_multipart(text, mime))
    if "json" in kind:
        return mask_query_values(_scrub_json_text(text, redactor))
    if "javascript" in kind or "ecmascript" in kind or kind == "text/css":
        return redactor.scrub(text)  # code: "cond?dob=1:0" is no query, and a replay runs it
    return mask_query_values(redactor.scrub(text))


def scrub_payload(data: bytes, mime: str, redactor: Redactor) -> bytes:
    """Body bytes (a decoded base64 body, a trace resource): as text when they are, else as bytes."""
    kind = _kind(mime)
    if kind == FORM or kind.startswith("multipart/"):
        # Latin-1 maps every byte to one character and back: a binary file part survives the split
        text = data.decode("latin-1")
        text = _mask_urlencoded(text) if kind == FORM else _mask_multipart(text, mime)
        return redactor.scrub_bytes(text.encode("latin-1"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return redactor.scrub_bytes(data)
    return scrub_body(text, mime, redactor).encode("utf-8")


def _header_value(name: str, value: Any) -> Any:
    if name.lower() in CREDENTIAL_HEADERS:
        return MASK
    return mask_query_values(value) if isinstance(value, str) else value  # Referer, Location


def _scrub_headers(headers: Any) -> Any:
    if isinstance(headers, list):
        return [
            {**h, "value": _header_value(str(h.get("name", "")), h["value"])} if "value" in h else h
            for h in headers
            if isinstance(h, dict)
        ]
    if isinstance(headers, dict):
        return {k: _header_value(k, v) for k, v in headers.items()}
    return headers


def _scrub_post_data(post: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    out = {**post}
    if isinstance(post.get("text"), str):
        out["text"] = scrub_body(post["text"], str(post.get("mimeType", "")), redactor)
    if isinstance(post.get("params"), list):
        out["params"] = [{**p, "value": MASK} if isinstance(p, dict) else p for p in post["params"]]
    return out


def _scrub_content(content: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """A response body, decoded first when it is base64."""
    text, mime = content.get("text"), str(content.get("mimeType", ""))
    if not isinstance(text, str):
        return content
    if content.get("encoding") != "base64":
        return {**content, "text": scrub_body(text, mime, redactor)}
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        # unreadable: dropped rather than kept unscrubbed
        return {**{k: v for k, v in content.items() if k != "encoding"}, "text": MASK}
    return {**content, "text": base64.b64encode(scrub_payload(data, mime, redactor)).decode("ascii")}


def scrub_network_entry(entry: Any, redactor: Redactor) -> Any:
    """Mask credentials, bodies and patient query values anywhere in a HAR entry or trace event."""
    if isinstance(entry, dict):
        if entry.keys() == {"k", "v"} and is_patient_key(entry["k"]):
            return {"k": entry["k"], "v": {"s": MASK}}  # a trace's serialized script argument
        out: dict[str, Any] = {}
        for key, value in entry.items():
            if key in {"headers", "allHeaders"}:
                out[key] = _scrub_headers(value)
            elif key == "cookies":
                out[key] = []
            elif key == "postData" and isinstance(value, dict):
                out[key] = _scrub_post_data(value, redactor)
            elif key == "content" and isinstance(value, dict) and "mimeType" in value:
                out[key] = _scrub_content(value, redactor)
            elif key in {"url", "redirectURL"} and isinstance(value, str):
                out[key] = mask_query_values(value)
            elif key == "queryString" and isinstance(value, list):
                out[key] = [
                    {**p, "value": MASK} if isinstance(p, dict) and is_patient_key(p.get("name")) else p
                    for p in value
                ]
            else:
                out[key] = scrub_network_entry(value, redactor)
        return out
    if isinstance(entry, list):
        return [scrub_network_entry(v, redactor) for v in entry]
    return entry


def scrub_har(path: Path, redactor: Redactor) -> None:
    """Rewrite a HAR file in place (embedded content) without credentials or patient data."""
    har = json.loads(path.read_text(encoding="utf-8"))
    log = har.get("log", {})
    log["entries"] = [scrub_network_entry(e, redactor) for e in log.get("entries", [])]
    path.write_text(redactor.scrub(json.dumps(har)), encoding="utf-8")


def _resource_types(events: str) -> dict[str, str]:
    """Which content type each trace resource holds, as the network events that name it say."""
    found: dict[str, str] = {}

    def walk(doc: Any) -> None:
        if isinstance(doc, dict):
            name = doc.get("_file") or (f"resources/{doc['_sha1']}" if doc.get("_sha1") else None)
            if isinstance(name, str) and isinstance(doc.get("mimeType"), str):
                found[name if name.startswith("resources/") else f"resources/{name}"] = doc["mimeType"]
            for value in doc.values():
                walk(value)
        elif isinstance(doc, list):
            for value in doc:
                walk(value)

    for line in events.splitlines():
        try:
            walk(json.loads(line))
        except ValueError:
            continue
    return found


def scrub_trace(path: Path, redactor: Redactor) -> None:
    """Rewrite a Playwright trace zip in place: every member scrubbed, each resource (request and
    response bodies) by the content type its network event gives it, or as bytes."""
    tmp = path.with_suffix(".scrubbing")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        types: dict[str, str] = {}
        for info in src.infolist():
            if info.filename.endswith((".trace", ".network")):
                types |= _resource_types(src.read(info).decode("utf-8", "replace"))
        for info in src.infolist():
            data, name = src.read(info), info.filename
            if name.endswith((".trace", ".network")):
                text = _scrub_json_text(data.decode("utf-8", "replace"), redactor)
                data = mask_query_values(text).encode()
            elif name.startswith("resources/") or name.endswith(TEXT_SUFFIXES):
                data = scrub_payload(data, types.get(name, ""), redactor)
            else:
                data = redactor.scrub_bytes(data)
            dst.writestr(info, data)
    tmp.replace(path)
