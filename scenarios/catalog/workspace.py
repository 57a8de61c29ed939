"""A throwaway deployment for running scenarios against the sandbox portals.

One SQLite queue (copied from a migrated template, which is far quicker than migrating each),
one vault with a fresh key, a documents folder for the synthetic letters and an artifacts folder
for the bundles: what ``payerbot`` has on a real machine, in one temporary folder.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp

from bot.clock import Clock
from bot.code_inbox import parse_entries
from bot.db import make_engine
from bot.migrate import upgrade
from bot.services import Services, build_services
from bot.settings import Settings
from portals import get_portal
from sandbox import PortalState, SandboxAccount, code_inboxes
from vault import Keyring

# quick enough that a control that is gone costs seconds, slow enough for a loaded 2-core machine
SCENARIO_SETTINGS: dict[str, Any] = {
    "action_timeout_ms": 3_000,
    "navigation_timeout_ms": 10_000,
    "lease_seconds": 60,
}


def migrated_template(folder: Path) -> Path:
    """An empty, migrated SQLite database to copy workspaces from."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "template.sqlite"
    if not path.exists():
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        engine.dispose()
    return path


@dataclass
class Workspace:
    root: Path
    settings: Settings
    services: Services

    @classmethod
    def create(
        cls, root: Path, *, template: Path | None = None, clock: Clock | None = None, **overrides: Any
    ) -> Workspace:
        for sub in ("artifacts", "documents"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        database = root / "payerbot.sqlite"
        if template is not None:
            shutil.copyfile(template, database)
        key_file = root / "vault.key"
        key_file.write_text(Keyring.generate().dump(), encoding="utf-8")
        key_file.chmod(0o600)
        settings = Settings(
            data_dir=root,
            database_url=f"sqlite:///{database}",
            artifacts_dir=root / "artifacts",
            documents_dir=root / "documents",
            vault_key_file=key_file,
            **{**SCENARIO_SETTINGS, **overrides},
        )
        services = build_services(settings, clock=clock)
        if template is None:
            upgrade(services.engine)
        return cls(root, settings, services)

    @property
    def documents(self) -> Path:
        return self.root / "documents"

    def seed_account(
        self, state: PortalState, login: SandboxAccount | None = None, **fields: Any
    ) -> tuple[str, SandboxAccount]:
        """A sandbox login in this workspace's vault: ``login``, or a fresh one (its own counters
        and second factor)."""
        if login is None:
            if state.payer.second_factor == "totp":
                fields.setdefault("totp_secret", pyotp.random_base32())
            login = state.add_account(**fields)
        name = f"acct-{login.username.removeprefix('canary-')}"
        if state.base_url is None:
            raise RuntimeError(f"the sandbox portal {state.payer_id} is not serving")
        # the portal's e-mailed codes are read from its inbox, configured as a deployment would
        self.settings.code_inboxes.update(parse_entries(code_inboxes({state.payer_id: state.base_url})))
        self.services.vault.add_account(
            state.payer_id,
            name,
            username=login.username,
            password=login.password,
            second_factor=get_portal(state.payer_id).second_factor.value,
            totp_secret=login.totp_secret,
            answers=dict(login.security_answers) or None,
            portal_url=state.base_url,
        )
        return name, login

    def close(self) -> None:
        self.services.engine.dispose()
