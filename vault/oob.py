"""Out-of-band one-time codes: the code a portal sent by e-mail or SMS, read from the inbox the
deployment configured for the account (``bot.code_inbox``, ``PAYERBOT_CODE_INBOXES``).

The session hands ``Vault.login_secrets`` an ``InboxSource``, which the vault binds to the account's
username (only the vault can decrypt it), or any plain ``CodeSource``. The inbox is read with a
deadline-bounded poll through the injected clock: it is outside the browser, so Playwright's
auto-waiting cannot wait on it.
"""

from __future__ import annotations

import json
import re
import stat
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from bot.clock import Clock, SystemClock
from bot.code_inbox import USERNAME, CodeInbox
from bot.errors import CodeInboxMissing, PortalTimeout
from bot.login import CodeSource
from bot.redact import PROCESS_SECRETS

CODE = re.compile(r"^[A-Za-z0-9-]{4,16}$")  # what a login code looks like; anything else is not typed
MAX_ANSWER_BYTES = 64 * 1024


class BindsUser(Protocol):
    """A code source that needs the account's username, which only the vault can decrypt."""

    def for_user(self, username: str) -> CodeSource: ...


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could lead the poll off the configured origin, or onto plain http: not followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def read_bearer_token(path: Path, where: str) -> str:
    """The relay's token; refused unless only its owner may read the file."""
    try:
        mode = path.stat().st_mode
        token = path.read_text(encoding="utf-8").strip() if stat.S_ISREG(mode) else ""
    except (OSError, UnicodeDecodeError):
        raise CodeInboxMissing(f"{where}: its bearer_token_file {path} cannot be read") from None
    if mode & 0o077:
        raise CodeInboxMissing(
            f"{where}: its bearer_token_file {path} has mode {stat.S_IMODE(mode):04o}, readable by "
            f"others; run `chmod 600 {path}`"
        )
    if not token:
        raise CodeInboxMissing(f"{where}: its bearer_token_file {path} is empty or not a file")
    PROCESS_SECRETS.add(token)
    return token


def find_code(body: bytes, inbox: CodeInbox) -> str | None:
    """The code in an inbox's answer, found as the inbox says (field, then pattern), or None."""
    if inbox.code_field is not None:
        try:
            value: Any = json.loads(body or b"null")
        except ValueError:
            return None
        for part in inbox.code_field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, str | int) or isinstance(value, bool):
            return None
        text = str(value)
    else:
        text = body.decode("utf-8", errors="replace")
    if inbox.code_pattern is not None:
        match = re.search(inbox.code_pattern, text)
        if match is None:
            return None
        text = match.group(1) if match.re.groups else match.group(0)
    code = text.strip()
    return code if CODE.match(code) else None


class InboxSource:
    """Polls the configured inbox for the code the portal just sent; ``where`` names the entry."""

    def __init__(
        self, inbox: CodeInbox, *, where: str, clock: Clock | None = None, skip_present: bool = True
    ) -> None:
        self.inbox = inbox
        self.where = where
        self.clock = clock or SystemClock()
        self.skip_present = skip_present
        # read now, before any login: an unusable token stops the login before the portal is asked
        path = inbox.bearer_token_file
        self.token = read_bearer_token(path, where) if path is not None else None

    def for_user(self, username: str) -> InboxPoll:
        return InboxPoll(self, username)

    def __repr__(self) -> str:
        return f"InboxSource({self.inbox.origin})"


class InboxPoll:
    """A ``CodeSource`` for one username; never returns the same code twice.

    With ``skip_present`` a code already in the inbox when the poll is created (before the login
    made the portal send a new one) is taken as stale and skipped.
    """

    def __init__(self, source: InboxSource, username: str) -> None:
        self._source = source
        url = source.inbox.url.replace(USERNAME, quote(username, safe=""))
        headers = {"Accept": "application/json, text/plain"}
        if source.token is not None:
            headers["Authorization"] = f"Bearer {source.token}"
        self._request = urllib.request.Request(url, headers=headers)  # noqa: S310 (https unless loopback: settings check)
        self._seen: set[str] = set()
        self._last = "nothing asked yet"
        if source.skip_present:
            present = self._fetch()
            if present:
                self._seen.add(present)

    def _fetch(self) -> str | None:
        """The code in the inbox now, or None (empty, not there yet, or the inbox not answering)."""
        timeout = self._source.inbox.request_timeout_seconds
        try:
            with _OPENER.open(self._request, timeout=timeout) as resp:
                body = resp.read(MAX_ANSWER_BYTES + 1)
        except urllib.error.HTTPError as exc:
            self._last = f"it answered HTTP {exc.code}"
            return None
        except (urllib.error.URLError, OSError) as exc:
            self._last = f"it did not answer ({type(exc).__name__})"
            return None
        code = find_code(body[:MAX_ANSWER_BYTES], self._source.inbox)
        self._last = (
            "its answer held no code where the entry says" if code is None else "it held only an old code"
        )
        return code

    def __call__(self) -> str:
        clock, inbox = self._source.clock, self._source.inbox
        deadline = clock.now().timestamp() + inbox.wait_seconds
        while True:
            code = self._fetch()
            if code and code not in self._seen:
                self._seen.add(code)
                return code
            if clock.now().timestamp() >= deadline:
                raise PortalTimeout(
                    f"no new one-time code arrived in the inbox at {inbox.origin} within "
                    f"{inbox.wait_seconds:g} s ({self._source.where}; last poll: {self._last})"
                )
            clock.sleep(min(inbox.poll_seconds, max(deadline - clock.now().timestamp(), 0.0)))

    def __repr__(self) -> str:
        return f"InboxPoll({self._source.inbox.origin})"
