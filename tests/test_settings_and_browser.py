"""Configuration errors name the variable; browser discovery follows its order and says what to install."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bot import browser
from bot.errors import BrowserNotFound, ConfigError
from bot.settings import load_settings


def test_a_bad_setting_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYERBOT_LEASE_SECONDS", "soon")
    with pytest.raises(ConfigError, match="PAYERBOT_LEASE_SECONDS"):
        load_settings()


def test_an_unknown_database_driver_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYERBOT_DATABASE_URL", "mysql://x@y/z")
    with pytest.raises(ConfigError, match=r"PAYERBOT_DATABASE_URL: .*sqlite:// or postgresql://"):
        load_settings()


def test_postgresql_urls_use_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYERBOT_DATABASE_URL", "postgresql://u@h/db")
    assert load_settings().resolved_database_url == "postgresql+psycopg://u@h/db"


def _executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def no_browsers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A machine with no Chromium anywhere: empty Playwright cache, no system package, empty PATH."""
    monkeypatch.delenv("PAYERBOT_BROWSER", raising=False)
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path / "ms-playwright"))
    monkeypatch.setattr(browser, "SYSTEM_CHROMIUM", (tmp_path / "usr-bin-chromium",))
    monkeypatch.setattr(browser, "SYSTEM_HEADLESS_SHELL", (tmp_path / "headless-shell",))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    return tmp_path


def test_payerbot_browser_comes_first(no_browsers: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = _executable(no_browsers / "my-chromium")
    _executable(no_browsers / "usr-bin-chromium")
    monkeypatch.setenv("PAYERBOT_BROWSER", str(mine))
    assert browser.find_chromium() == mine


def test_a_payerbot_browser_that_is_not_executable_is_refused(
    no_browsers: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYERBOT_BROWSER", str(no_browsers / "nothing-here"))
    with pytest.raises(BrowserNotFound, match=r"PAYERBOT_BROWSER=.* is not an executable file"):
        browser.find_chromium()


def test_playwrights_own_browser_comes_before_the_system_one(no_browsers: Path) -> None:
    own = no_browsers / "ms-playwright" / "chromium-1234" / "chrome-linux64"
    own.mkdir(parents=True)
    _executable(own / "chrome")
    _executable(no_browsers / "usr-bin-chromium")
    assert browser.find_chromium() is None  # None: launch Playwright's own
    assert "executable_path" not in browser.launch_args()


def test_the_system_chromium_is_the_fallback(no_browsers: Path) -> None:
    system = _executable(no_browsers / "usr-bin-chromium")
    assert browser.find_chromium() == system
    args = browser.launch_args()
    assert args["executable_path"] == str(system)
    assert "--disable-background-networking" in args["args"]
    assert ("--no-sandbox" in args["args"]) == (os.geteuid() == 0)


def test_a_headless_run_prefers_debians_headless_shell_and_a_headed_one_the_full_browser(
    no_browsers: Path,
) -> None:
    system = _executable(no_browsers / "usr-bin-chromium")
    assert browser.find_chromium(headless=True) == system  # no shell installed: the full browser
    shell = _executable(no_browsers / "headless-shell")
    assert browser.launch_args(headless=True)["executable_path"] == str(shell)
    assert browser.launch_args(headless=False)["executable_path"] == str(system)


def test_no_browser_says_exactly_what_to_install(no_browsers: Path) -> None:
    with pytest.raises(BrowserNotFound) as caught:
        browser.find_chromium()
    message = str(caught.value)
    assert "apt-get install chromium" in message
    assert "playwright install chromium" in message
    assert "PAYERBOT_BROWSER" in message
