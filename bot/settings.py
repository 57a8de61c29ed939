"""Configuration from ``PAYERBOT_*`` environment variables (and a ``.env`` file)."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.code_inbox import CodeInbox, inbox_for, parse_entries
from bot.errors import ConfigError
from bot.logging import get_logger
from bot.models import AppealLevel
from bot.origin import origin_of, url_problem

log = get_logger()


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "payerbot"


def keep_private(path: Path) -> None:
    """Take group and other permissions off ``path`` (the queue's payloads hold patient data), with
    a warning naming it when it had any; one we may not change is warned of and left."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if not mode & 0o077:
        return
    try:
        path.chmod(mode & 0o700)
    except OSError:
        log.warning("cannot make a private path private", path=str(path), reason=f"mode {mode:o}")
        return
    log.warning("tightened a path others could read", path=str(path), reason=f"was {mode:o}")


def private_data_dir(path: Path) -> Path:
    """The data directory: created 0700, or an existing looser one tightened to it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    keep_private(path)
    return path


def normalize_endpoint(url: str) -> str:
    """A model's base URL spelt one way (``scheme://host:port/path``), so that two spellings compare
    equal. The rule is the login's (``bot.origin``): https, or http on a loopback host, since the
    status wording must not cross a network in the clear. Messages never repeat a password."""
    url = url.strip()
    problem = url_problem(url)
    parts = urlsplit(url) if problem is None else None
    if parts is not None and (parts.query or parts.fragment):
        problem = "must have no query or fragment"
    if parts is None or problem is not None:
        raise ValueError(problem)  # a phrase to follow the entry's name
    return origin_of(url) + parts.path.rstrip("/")


class Settings(BaseSettings):
    """Every setting payerbot reads; each maps to ``PAYERBOT_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="PAYERBOT_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    artifacts_dir: Path | None = None
    documents_dir: Path | None = None

    vault_key: SecretStr | None = None
    vault_key_file: Path | None = None

    # where each payer's e-mailed or texted login codes are read: JSON, payer or payer/account -> inbox
    code_inboxes: Annotated[dict[str, CodeInbox], NoDecode] = Field(default_factory=dict)
    inbox_url: str | None = None  # replaced by code_inboxes; refused when set, so it is not ignored

    browser: Path | None = None
    browser_ws_endpoint: str | None = None
    headless: bool = True

    service_identity: str = Field(default_factory=lambda: f"payerbot@{socket.gethostname()}")
    worker_id: str | None = None

    lease_seconds: float = Field(default=120.0, gt=5)
    batch_size: int = Field(default=10, ge=1, le=500)
    max_attempts_status: int = Field(default=5, ge=1)
    max_attempts_appeal: int = Field(default=3, ge=1)
    retry_base_seconds: float = Field(default=30.0, gt=0)
    retry_max_seconds: float = Field(default=3600.0, gt=0)
    action_timeout_ms: int = Field(default=15_000, ge=500)
    navigation_timeout_ms: int = Field(default=30_000, ge=500)

    sweep_interval_minutes: float = Field(default=240.0, gt=0)
    worker_interval_seconds: float = Field(default=30.0, gt=0)
    reaper_interval_seconds: float = Field(default=60.0, gt=0)

    record: Literal["failures", "always", "never"] = "failures"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"

    llm_model: str | None = None
    # base URLs a model may be reached at (comma-separated); none, the default, keeps the fallback off
    llm_endpoints: Annotated[tuple[str, ...], NoDecode] = ()
    llm_min_confidence: float = Field(default=0.8, ge=0, le=1)
    codelists_dir: Path | None = None

    # days from the denial date within which an appeal is filed, per payer and level, over the
    # portal's own (``Portal.filing_deadline_days``): "meridian.first_level=90,rxpress.reconsideration=60"
    filing_deadlines: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)

    @field_validator("filing_deadlines", mode="before")
    @classmethod
    def _filing_deadlines(cls, value: object) -> object:
        if isinstance(value, str):
            entries = [entry.strip() for entry in value.split(",") if entry.strip()]
            pairs: dict[str, object] = {}
            for entry in entries:
                key, sep, days = entry.partition("=")
                if not sep:
                    raise ValueError(f"entry '{key.strip()}' needs '=DAYS' (e.g. meridian.first_level=90)")
                pairs[key.strip()] = days.strip()
            value = pairs
        if not isinstance(value, dict):
            return value
        parsed: dict[str, int] = {}
        for key, days in value.items():
            payer, dot, level = str(key).partition(".")
            if not (dot and re.fullmatch(r"[a-z][a-z0-9_]{1,39}", payer)):
                raise ValueError(f"key '{key}' must be PAYER.LEVEL (e.g. meridian.first_level)")
            if level not in {lv.value for lv in AppealLevel}:
                known = ", ".join(lv.value for lv in AppealLevel)
                raise ValueError(f"key '{key}': unknown appeal level '{level}' (levels: {known})")
            try:
                number = int(str(days))
            except ValueError:
                raise ValueError(f"key '{key}': days must be a whole number") from None
            if not 1 <= number <= 3650:
                raise ValueError(f"key '{key}': days must be between 1 and 3650")
            parsed[f"{payer}.{level}"] = number
        return parsed

    def filing_deadline_days(self, payer: str, level: str) -> int | None:
        """The configured days for ``payer``'s appeals at ``level``, when configuration sets them."""
        return self.filing_deadlines.get(f"{payer}.{level}")

    @field_validator("llm_endpoints", mode="before")
    @classmethod
    def _allowed_endpoints(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list | tuple):
            return value
        entries = [str(entry) for entry in value if str(entry).strip()]
        normalized = []
        for number, entry in enumerate(entries, start=1):
            try:
                normalized.append(normalize_endpoint(entry))
            except ValueError as exc:
                raise ValueError(f"entry {number} {exc}") from None
        return tuple(normalized)

    @field_validator("code_inboxes", mode="before")
    @classmethod
    def _code_inboxes(cls, value: object) -> object:
        # each inbox is asked for a login's username and answers with its code: https unless loopback
        if isinstance(value, str | bytes):
            try:
                value = json.loads(value or "{}")
            except json.JSONDecodeError as exc:
                raise ValueError(f"is not JSON ({exc.msg} at character {exc.pos})") from None
        return parse_entries(value)

    @field_validator("inbox_url")
    @classmethod
    def _inbox_url_replaced(cls, value: str | None) -> str | None:
        if value:
            raise ValueError(
                "is no longer read: name each payer's inbox in PAYERBOT_CODE_INBOXES, e.g. "
                '{"rxpress": {"source": "http", "url": "https://relay.example/codes/{username}", '
                '"code_field": "code"}}'
            )
        return None

    def code_inbox(self, payer: str, account: str) -> CodeInbox | None:
        """Where ``payer/account``'s out-of-band codes are read: its own entry, else its payer's."""
        return inbox_for(self.code_inboxes, payer, account)

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str | None) -> str | None:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must start with sqlite:// or postgresql:// (or postgresql+psycopg://)")
        return value

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
            return url
        # the queue's file goes in the data directory: private from its first use
        return f"sqlite:///{private_data_dir(self.data_dir) / 'payerbot.db'}"

    @cached_property
    def resolved_artifacts_dir(self) -> Path:
        return self.artifacts_dir or private_data_dir(self.data_dir) / "artifacts"

    @cached_property
    def resolved_worker_id(self) -> str:
        return self.worker_id or f"{socket.gethostname()}:{os.getpid()}"

    def max_attempts(self, kind: str) -> int:
        return self.max_attempts_appeal if kind == "appeal_submission" else self.max_attempts_status


def load_settings(**overrides: Any) -> Settings:
    """Read settings, turning a bad value into a ConfigError that names the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = "PAYERBOT_" + "_".join(str(p) for p in err["loc"]).upper()
            problems.append(f"{name}: {err['msg']}")
        raise ConfigError("bad configuration: " + "; ".join(problems)) from None
