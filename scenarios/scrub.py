"""Scrubbing recorded network logs and traces of cookies, credentials and patient data.

Playwright's traces and HAR files record request headers (cookies, authorization), form bodies and
every response body. Before a bundle is kept, each is rewritten: credential headers and cookies
are replaced, patient-data JSON keys are masked, and every known sensitive value is replaced.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from bot.redact import MASK, Redactor, scrub_json_keys

CREDENTIAL_HEADERS = frozenset(
    {"cookie", "set-cookie", "authorization", "proxy-authorization", "x-csrf-token", "x-xsrf-token"}
)
TEXT_SUFFIXES = (".trace", ".network", ".stacks", ".json", ".html", ".txt", ".css", ".js", ".xml")


def _scrub_headers(headers: Any) -> Any:
    if isinstance(headers, list):
        return [
            {**h, "value": MASK} if str(h.get("name", "")).lower() in CREDENTIAL_HEADERS else h
            for h in headers
            if isinstance(h, dict)
        ]
    if isinstance(headers, dict):
        return {k: (MASK if k.lower() in CREDENTIAL_HEADERS else v) for k, v in headers.items()}
    return headers


def scrub_network_entry(entry: Any) -> Any:
    """Mask credential headers and cookies anywhere in a HAR entry or trace network event."""
    if isinstance(entry, dict):
        out: dict[str, Any] = {}
        for key, value in entry.items():
            if key in {"headers", "allHeaders"}:
                out[key] = _scrub_headers(value)
            elif key == "cookies":
                out[key] = []
            elif key == "postData" and isinstance(value, dict) and value.get("params"):
                out[key] = {**value, "params": [{**p, "value": MASK} for p in value["params"]]}
            else:
                out[key] = scrub_network_entry(value)
        return out
    if isinstance(entry, list):
        return [scrub_network_entry(v) for v in entry]
    return entry


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
        data = scrub_json_keys(scrub_network_entry(data))
        out.append(redactor.scrub(json.dumps(data, separators=(",", ":"))))
    return "\n".join(out)


def scrub_har(path: Path, redactor: Redactor) -> None:
    """Rewrite a HAR file in place (embedded content) without credentials or patient data."""
    har = json.loads(path.read_text(encoding="utf-8"))
    for entry in har.get("log", {}).get("entries", []):
        entry["request"] = scrub_network_entry(entry.get("request", {}))
        response = scrub_network_entry(entry.get("response", {}))
        content = response.get("content") or {}
        if isinstance(content.get("text"), str) and content.get("encoding") != "base64":
            mime = str(content.get("mimeType", ""))
            text = content["text"]
            content["text"] = _scrub_json_text(text, redactor) if "json" in mime else redactor.scrub(text)
        response["content"] = content
        entry["response"] = response
    path.write_text(redactor.scrub(json.dumps(har)), encoding="utf-8")


def scrub_trace(path: Path, redactor: Redactor) -> None:
    """Rewrite a Playwright trace zip in place: every text member scrubbed, binaries kept."""
    tmp = path.with_suffix(".scrubbing")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            name = info.filename
            if name.endswith((".trace", ".network")):
                data = _scrub_json_text(data.decode("utf-8", "replace"), redactor).encode()
            elif name.endswith(TEXT_SUFFIXES) or name.startswith("resources/"):
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError:
                    data = redactor.scrub_bytes(data)
                else:
                    stripped = text.lstrip()
                    if stripped.startswith(("{", "[")):
                        data = _scrub_json_text(text, redactor).encode()
                    else:
                        data = redactor.scrub(text).encode()
            dst.writestr(info, data)
    tmp.replace(path)
