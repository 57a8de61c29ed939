"""Where an account's out-of-band login code is read: an inbox a deployment configures per payer.

A portal that sends its one-time code by e-mail or SMS declares so (``second_factor =
OUT_OF_BAND``); the deployment says where that message can be read, in ``PAYERBOT_CODE_INBOXES``:
a JSON object from ``payer`` or ``payer/account`` (the account's own entry wins) to an inbox. One
kind of inbox so far, ``"source": "http"``: an HTTP relay (a mail or SMS gateway's webhook store,
or the sandbox's inbox) asked ``GET url`` with ``{username}`` filled in. The code is found in the
answer by ``code_field`` (a JSON field, dotted for a nested one), ``code_pattern`` (a regular
expression whose first group, or whole match, is the code), or both: the field's text, then the
pattern over it.

The entries are plain data (no I/O), so they can move to a per-payer configuration file unchanged;
``vault.oob`` polls them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from bot.origin import origin_of, url_problem

USERNAME = "{username}"
KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]{1,39}(/[^\x00-\x1f\x7f]{1,200})?")
"""``payer`` or ``payer/account``: a payer id as the vault spells it, then an optional account."""


class HttpCodeInbox(BaseModel):
    """An HTTP inbox or relay that answers ``GET url`` (``{username}`` filled in) with the newest
    code sent to that login, in a JSON field or in text a pattern finds it in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: Literal["http"]
    url: str
    """A URL template holding ``{username}`` in its path or query; https unless the host is loopback."""
    code_field: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
    code_pattern: str | None = None
    wait_seconds: float = Field(default=120.0, gt=0, le=900)
    """How long a login waits for a new code before giving up (the portal's code lives ~5 minutes)."""
    poll_seconds: float = Field(default=2.0, gt=0, le=60)
    request_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    bearer_token_file: Path | None = None
    """A file (mode 0600) whose content is sent as ``Authorization: Bearer ...``: a relay holding
    login codes should not answer anyone who asks."""

    @model_validator(mode="after")
    def _usable(self) -> HttpCodeInbox:
        problem = template_problem(self.url)
        if problem is not None:
            raise ValueError(f"url {problem}")
        if self.code_field is None and self.code_pattern is None:
            raise ValueError(
                "names no way to find the code: set code_field (a JSON field), code_pattern, or both"
            )
        if self.code_pattern is not None:
            try:
                groups = re.compile(self.code_pattern).groups
            except re.error as exc:
                raise ValueError(f"code_pattern is not a regular expression ({exc})") from None
            if groups > 1:
                raise ValueError("code_pattern has more than one group (the first group is the code)")
        if self.poll_seconds > self.wait_seconds:
            raise ValueError("poll_seconds is longer than wait_seconds")
        return self

    @property
    def origin(self) -> str:
        """The relay's origin, the only part of its URL a message may show (the path holds a login)."""
        return origin_of(self.url.replace(USERNAME, "u"))


CodeInbox = HttpCodeInbox
"""Every kind of inbox; a second kind (IMAP, say) joins as a union discriminated by ``source``."""

_ENTRIES: TypeAdapter[dict[str, CodeInbox]] = TypeAdapter(dict[str, CodeInbox])


def template_problem(url: str) -> str | None:
    """Why ``url`` cannot be an inbox template (a phrase to follow its name), or None.

    ``{username}`` must appear, and only where it cannot move the request to another host: two
    logins' URLs must share one origin, and that origin must pass the login rule (``bot.origin``).
    """
    if url.count(USERNAME) != 1:
        return f"must hold {USERNAME} exactly once"
    if re.search(r"\{(?!username\})", url):
        return f"may hold no placeholder but {USERNAME}"
    one, other = url.replace(USERNAME, "a"), url.replace(USERNAME, "b.c:1@d")
    problem = url_problem(one)
    if problem is not None:
        return problem
    if origin_of(one) != origin_of(other) or "#" in url:
        return f"must hold {USERNAME} in its path or query, not in its host or fragment"
    return None


def parse_entries(value: object) -> dict[str, CodeInbox]:
    """The entries of ``PAYERBOT_CODE_INBOXES``; ValueError names the first bad entry and why."""
    if not isinstance(value, dict):
        raise ValueError('must be a JSON object such as {"rxpress": {"source": "http", "url": ...}}')
    for key in value:
        if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
            raise ValueError(f"entry {str(key)[:60]!r} is not a payer id or payer/account")
    try:
        return _ENTRIES.validate_python(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ValueError(f"entry {where}: {message}") from None


def inbox_for(inboxes: dict[str, CodeInbox], payer: str, account: str) -> CodeInbox | None:
    """The account's own entry, else its payer's, else None."""
    return inboxes.get(f"{payer}/{account}") or inboxes.get(payer)
