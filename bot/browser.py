"""Finding and starting Chromium.

Order: ``PAYERBOT_BROWSER`` (an executable), Playwright's own downloaded browser, then Debian's
packages. A headless run prefers Debian's ``chromium-headless-shell`` over ``/usr/bin/chromium``,
as Playwright itself prefers its own headless shell: the full browser in headless mode costs close
to three times the CPU for the same pages (``bench/bench_browser.py``). A team with remote
browsers sets ``PAYERBOT_BROWSER_WS_ENDPOINT`` instead.

Neither Chromium nor Playwright's driver (a node process) gets our settings: Chromium starts with
an environment built from an allowlist (``browser_env``), and the driver is started with
``PAYERBOT_*`` and ``OPENAI_*`` out of the environment it copies (``driver``). A browser that runs
portal pages has no use for the vault key or the model's API key.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Playwright, sync_playwright

from bot.errors import BrowserNotFound

SYSTEM_CHROMIUM = (Path("/usr/bin/chromium"), Path("/usr/bin/chromium-browser"))
# Debian's package `chromium-headless-shell` (the wrapper in /usr/bin only execs this binary)
SYSTEM_HEADLESS_SHELL = (Path("/usr/lib/chromium/chromium-headless-shell"),)

# The closed network of a server makes Chromium's background services noisy; root needs no sandbox.
QUIET_ARGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
)

# What Chromium needs from the environment: paths, locale, time zone, a display when headed, fonts,
# the sandbox helper, Debian's wrapper flags and a proxy. Anything else (our settings, cloud and
# database credentials) stays out.
BROWSER_ENV = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "DISPLAY",
        "WAYLAND_DISPLAY",
        "XAUTHORITY",
        "DBUS_SESSION_BUS_ADDRESS",
        "FONTCONFIG_FILE",
        "FONTCONFIG_PATH",
        "LD_LIBRARY_PATH",
        "CHROME_DEVEL_SANDBOX",
        "CHROMIUM_FLAGS",
        *(f"{name}_proxy" for name in ("http", "https", "no", "all")),
        *(f"{name}_PROXY" for name in ("HTTP", "HTTPS", "NO", "ALL")),
    }
)
BROWSER_ENV_PREFIXES = ("LC_", "XDG_")
# the variables our own settings read: never handed to another process
SECRET_PREFIXES = ("PAYERBOT_", "OPENAI_")
_DRIVER_START = threading.Lock()

INSTALL_HINT = (
    "no Chromium found. Install one of: Debian/Ubuntu `sudo apt-get install chromium`; "
    "or, with internet access, `playwright install chromium`; "
    "or set PAYERBOT_BROWSER=/path/to/chromium"
)


def playwright_chromium(playwright: Playwright | None = None) -> Path | None:
    """Playwright's own Chromium, when `playwright install` has downloaded it."""
    if playwright is not None:
        path = Path(playwright.chromium.executable_path)
    else:  # the same cache Playwright uses, without starting its driver
        cache = Path(os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or Path.home() / ".cache/ms-playwright")
        found = sorted(cache.glob("chromium-*/chrome-linux*/chrome"))
        if not found:
            return None
        path = found[-1]
    return path if path.is_file() and os.access(path, os.X_OK) else None


def find_chromium(
    configured: Path | None = None, playwright: Playwright | None = None, *, headless: bool = False
) -> Path | None:
    """The executable to launch; None means Playwright's own (found installed)."""
    env = configured or (Path(os.environ["PAYERBOT_BROWSER"]) if os.environ.get("PAYERBOT_BROWSER") else None)
    if env is not None:
        if env.is_file() and os.access(env, os.X_OK):
            return env
        raise BrowserNotFound(f"PAYERBOT_BROWSER={env} is not an executable file; {INSTALL_HINT}")
    if playwright_chromium(playwright) is not None:
        return None
    for candidate in (*SYSTEM_HEADLESS_SHELL, *SYSTEM_CHROMIUM) if headless else SYSTEM_CHROMIUM:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    which = shutil.which("chromium")
    if which:
        return Path(which)
    raise BrowserNotFound(INSTALL_HINT)


def browser_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment Chromium starts with: the allowlisted part of ``environ`` (default ours)."""
    source = os.environ if environ is None else environ
    return {
        name: value
        for name, value in source.items()
        if (name in BROWSER_ENV or name.startswith(BROWSER_ENV_PREFIXES))
        and not name.startswith(SECRET_PREFIXES)
    }


@contextmanager
def driver() -> Iterator[Playwright]:
    """Playwright, its driver process started without our settings in its environment.

    Playwright copies ``os.environ`` into the driver and offers no other way, so our variables are
    taken out while it starts (under a lock, so two starts never interleave) and put back at once:
    settings are read before this, and nothing else reads them while the driver starts.
    """
    manager = sync_playwright()
    with _DRIVER_START:
        held = {name: os.environ.pop(name) for name in list(os.environ) if name.startswith(SECRET_PREFIXES)}
        try:
            playwright = manager.start()
        finally:
            os.environ.update(held)
    try:
        yield playwright
    finally:
        playwright.stop()


def launch_args(
    configured: Path | None = None, *, headless: bool = True, playwright: Playwright | None = None
) -> dict[str, Any]:
    """Keyword arguments for ``playwright.chromium.launch`` (also used by the test fixtures)."""
    args = list(QUIET_ARGS)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")
    kwargs: dict[str, Any] = {"headless": headless, "args": args, "env": browser_env()}
    executable = find_chromium(configured, playwright, headless=headless)
    if executable is not None:
        kwargs["executable_path"] = str(executable)
    return kwargs


def launch(
    playwright: Playwright,
    *,
    configured: Path | None = None,
    ws_endpoint: str | None = None,
    headless: bool = True,
    slow_mo: float | None = None,
) -> Browser:
    if ws_endpoint:
        return playwright.chromium.connect(ws_endpoint)
    kwargs = launch_args(configured, headless=headless, playwright=playwright)
    if slow_mo:
        kwargs["slow_mo"] = slow_mo
    return playwright.chromium.launch(**kwargs)
