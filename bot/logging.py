"""Structured JSON logs through an allowlist.

Only keys known to be safe reach the output; values of keys known to carry patient data are
redacted; any other key is dropped (its name is kept under ``dropped`` so a developer sees what to
allow). Every string is also scrubbed of the secrets the vault handed out in this process, and
tracebacks are rendered without local variables.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from structlog.tracebacks import ExceptionDictTransformer

from bot.redact import MASK, PHI_KEYS, PROCESS_SECRETS, normalize_key

SAFE_KEYS = frozenset(
    {
        "event",
        "level",
        "timestamp",
        "logger",
        "exception",
        "worker",
        "payer",
        "account",
        "item_id",
        "item_ids",
        "kind",
        "state",
        "from_state",
        "to_state",
        "attempt",
        "token",
        "run_id",
        "correlation_id",
        "submission_id",
        "confirmation_id",
        "reference",
        "canonical_status",
        "source",
        "confidence",
        "outcome",
        "disposition",
        "error_kind",
        "error",
        "locator",
        "step",
        "url_path",
        "duration_ms",
        "count",
        "counts",
        "batch_size",
        "leased",
        "reaped",
        "due",
        "retry_at",
        "bundle",
        "evidence_sha256",
        "job",
        "interval_s",
        "url",
        "port",
        "version",
        "host",
        "action",
        "reason",
        "key_id",
        "records",
        "path",
    }
)
# normalised like PHI_KEYS (``normalize_key``): totpSecret and totp_secret are one key
REDACTED_KEYS = PHI_KEYS | {"password", "secret", "totpsecret", "answer", "cookie", "cookies", "tokenvalue"}


PLAIN = (bool, int, float, type(None))


def _as_text(value: Any) -> str:
    """Any other value as the renderer would show it (its repr), so that it can be scrubbed: an
    exception or a model logged as a value carries its message or fields in that text."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return repr(value)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return PROCESS_SECRETS.scrub(value)
    if isinstance(value, PLAIN):
        return value
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _scrub(v) for k, v in allowlist_dict(value).items()}
    return PROCESS_SECRETS.scrub(_as_text(value))


def allowlist_dict(event: MutableMapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in event.items():
        if normalize_key(key) in REDACTED_KEYS:
            out[key] = MASK
        elif str(key).lower() in SAFE_KEYS:
            out[key] = value
        else:
            dropped.append(str(key))
    if dropped:
        out["dropped"] = sorted(dropped)
    return out


def _scrub_strings(value: Any) -> Any:
    """Scrub every string of a structure we render whole (a traceback) without dropping keys; the
    values of patient-data and secret keys are redacted here too."""
    if isinstance(value, str):
        return PROCESS_SECRETS.scrub(value)
    if isinstance(value, PLAIN):
        return value
    if isinstance(value, list | tuple):
        return [_scrub_strings(v) for v in value]
    if isinstance(value, dict):
        return {
            PROCESS_SECRETS.scrub(str(k)): MASK if normalize_key(k) in REDACTED_KEYS else _scrub_strings(v)
            for k, v in value.items()
        }
    return PROCESS_SECRETS.scrub(_as_text(value))


def allowlist(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: keep safe keys, redact PHI keys, drop the rest, scrub every string."""
    return {
        key: _scrub_strings(value) if key == "exception" else _scrub(value)
        for key, value in allowlist_dict(event).items()
    }


def exception_as_text(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor for the console: its renderer prints ``exception`` as text and fails on
    the structured (already scrubbed) traceback, so that is handed over as indented JSON."""
    exc = event.get("exception")
    if exc is not None and not isinstance(exc, str):
        event["exception"] = json.dumps(exc, indent=2, default=str)
    return event


def _current_stderr(*_: Any) -> structlog.PrintLogger:
    """A logger on the ``sys.stderr`` of the moment it logs, not of the moment logging was set up:
    a host that swaps stderr (pytest's capture, a daemon redirecting it) must not leave us writing
    to a closed file."""
    return structlog.PrintLogger(sys.stderr)


def configure_logging(level: str = "info", fmt: str = "json", stream: TextIO | None = None) -> None:
    renderers: list[Any] = (
        [structlog.processors.JSONRenderer(sort_keys=True)]
        if fmt == "json"
        else [exception_as_text, structlog.dev.ConsoleRenderer(colors=False)]
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.ExceptionRenderer(
                ExceptionDictTransformer(show_locals=False, max_frames=20)
            ),
            allowlist,
            *renderers,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(stream) if stream is not None else _current_stderr,
        cache_logger_on_first_use=False,
    )


def get_logger(**bound: Any) -> Any:
    """A lazy logger: it takes the configuration in force when it logs, not when it was made."""
    return structlog.get_logger("payerbot", **bound)
