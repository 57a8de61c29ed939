"""Origins of portal URLs, and the rule for where a login may go: https, or http on loopback.

An origin is (scheme, host, port), the unit a browser isolates pages by; a secret is typed only
into a page and a field whose origins are the account's. Written ``scheme://host:port`` with the
port always spelt out and an IP host in its compressed form, so two spellings of one origin (a
default port left out, an upper-case host) compare equal.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult, urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
LOOPBACK_NAMES = frozenset({"localhost"})
MAX_URL_LENGTH = 500  # the accounts.portal_url column
PLAIN_HTTP_RULE = "must use https:// (plain http:// only for a loopback host: 127.0.0.0/8, ::1, localhost)"


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _split(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (urlsplit checks the port only when it is read)
    except ValueError:
        return None
    return parts


def url_problem(url: str) -> str | None:
    """Why a login may not go to ``url`` (a phrase to follow its name), or None when it may."""
    if len(url) > MAX_URL_LENGTH:
        return f"is longer than {MAX_URL_LENGTH} characters"
    if any(c.isspace() or not c.isprintable() for c in url):
        return "holds a space or a control character"
    parts = _split(url)
    if parts is None or parts.scheme not in DEFAULT_PORTS:
        return "must be an https:// URL"
    if not parts.hostname:
        return "names no host"
    if not parts.hostname.isascii():
        return "must spell its host in ASCII (punycode)"
    if parts.username is not None or parts.password is not None:
        return "must not carry a user name or password"
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return PLAIN_HTTP_RULE
    return None


def origin_of(url: str) -> str:
    """``scheme://host:port`` of a URL, or ``"null"`` for one with no host (about:blank, data:)."""
    parts = _split(url)
    if parts is None or not parts.scheme or not parts.hostname:
        return "null"
    host = parts.hostname
    try:
        address = ipaddress.ip_address(host)
        host = f"[{address.compressed}]" if address.version == 6 else address.compressed
    except ValueError:
        pass
    port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    return f"{parts.scheme}://{host}:{port}"
