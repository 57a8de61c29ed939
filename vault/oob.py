"""Out-of-band one-time codes: the code a portal sent by e-mail or SMS, fetched from an inbox.

The runner hands ``Vault.login_secrets`` either a plain ``CodeSource`` (any callable returning the
code) or an ``InboxSource``, which the vault binds to the account's username. The inbox is read
with a deadline-bounded poll through the injected clock (the inbox is outside the browser, so
Playwright's auto-waiting cannot wait on it). The sandbox portals serve
``GET {portal}/__sandbox/inbox/{username}`` -> ``{"code": "..."}``; a real deployment points
``path`` at its own mail or SMS gateway.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Protocol
from urllib.parse import quote

from bot.clock import Clock, SystemClock
from bot.errors import ConfigError, PortalTimeout
from bot.login import CodeSource


class BindsUser(Protocol):
    """A code source that needs the account's username, which only the vault can decrypt."""

    def for_user(self, username: str) -> CodeSource: ...


class InboxSource:
    """Polls an inbox URL for the code the portal just sent."""

    def __init__(
        self,
        base_url: str,
        *,
        clock: Clock | None = None,
        path: str = "/__sandbox/inbox/{username}",
        timeout: float = 120.0,
        poll_every: float = 2.0,
        request_timeout: float = 10.0,
        skip_present: bool = True,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"inbox base URL must start with http:// or https:// (got {base_url[:80]!r})")
        if "{username}" not in path:
            raise ConfigError("inbox path must contain {username}")
        self.base_url = base_url.rstrip("/")
        self.path = path
        self.clock = clock or SystemClock()
        self.timeout = timeout
        self.poll_every = poll_every
        self.request_timeout = request_timeout
        self.skip_present = skip_present

    def for_user(self, username: str) -> InboxPoll:
        return InboxPoll(self, username)

    def __repr__(self) -> str:
        return f"InboxSource({self.base_url})"


class InboxPoll:
    """A ``CodeSource`` for one username; never returns the same code twice.

    With ``skip_present`` a code already in the inbox when the poll is created (before the login
    made the portal send a new one) is taken as stale and skipped.
    """

    def __init__(self, source: InboxSource, username: str) -> None:
        self._source = source
        self._url = source.base_url + source.path.format(username=quote(username, safe=""))
        self._seen: set[str] = set()
        if source.skip_present:
            present = self._fetch()
            if present:
                self._seen.add(present)

    def _fetch(self) -> str | None:
        """The code in the inbox now, or None (empty, not there yet, or the inbox not answering)."""
        try:
            # the URL is built from the configured portal URL, never from outside input
            with urllib.request.urlopen(self._url, timeout=self._source.request_timeout) as resp:  # noqa: S310
                body = json.loads(resp.read() or b"null")
        except (urllib.error.URLError, OSError, ValueError):
            return None
        code = body.get("code") if isinstance(body, dict) else None
        return str(code).strip() if code else None

    def __call__(self) -> str:
        clock = self._source.clock
        deadline = clock.now().timestamp() + self._source.timeout
        while True:
            code = self._fetch()
            if code and code not in self._seen:
                self._seen.add(code)
                return code
            if clock.now().timestamp() >= deadline:
                raise PortalTimeout(
                    f"no new one-time code arrived in the inbox at {self._source.base_url} "
                    f"within {self._source.timeout:g} s"
                )
            clock.sleep(self._source.poll_every)

    def __repr__(self) -> str:
        return f"InboxPoll({self._source.base_url})"
