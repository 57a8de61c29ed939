"""What a sandbox payer is, its demo accounts, and the registry that finds payers.

A sandbox payer is a subpackage of ``sandbox`` whose ``__init__`` exposes ``PAYER``: its data spec,
its demo accounts, and a function that builds its Starlette app around a ``PortalState``. Adding a
payer adds a subpackage; nothing here changes.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp

from sandbox.data import DataSpec, NumberMaker

if TYPE_CHECKING:
    from sandbox.state import PortalState

DEFAULT_SEED = 7

SecondFactor = Literal["totp", "security_questions", "out_of_band", "none"]

ANSWER_WORDS = ("Juniper", "Biscuit", "Marigold", "Halifax", "Pontiac", "Wren", "Odessa", "Clover")


class SandboxAccount(BaseModel):
    """A portal login, as data a tool can put in the vault."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    payer: str
    account: str
    username: str
    password: str
    display_name: str = "Demo User"
    totp_secret: str | None = None
    security_answers: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class AccountSpec:
    account: str
    username: str
    password: str
    display_name: str
    security_answers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SandboxPayer:
    payer_id: str
    display_name: str
    data: DataSpec
    accounts: tuple[AccountSpec, ...]
    appeal_number: NumberMaker
    build_app: Callable[[PortalState], ASGIApp]
    second_factor: SecondFactor = "none"
    security_questions: tuple[str, ...] = ()  # the portal's question pool, for security_questions

    def totp_secret(self, username: str, seed: int) -> str:
        """A base32 secret derived from the seed, so demo accounts are the same on every run."""
        digest = hashlib.sha256(f"{self.payer_id}:{seed}:{username}".encode()).digest()
        return base64.b32encode(digest[:20]).decode()

    def security_answers(self, username: str, seed: int) -> dict[str, str]:
        """Two or three of the pool's questions with made-up answers, derived from the seed like the
        TOTP secret, for an account that was given none."""
        if not self.security_questions:
            return {}
        digest = hashlib.sha256(f"{self.payer_id}:{seed}:{username}:answers".encode()).digest()
        pool = list(self.security_questions)
        chosen = [pool.pop(digest[i] % len(pool)) for i in range(min(2 + digest[9] % 2, len(pool)))]
        return {
            q: f"{ANSWER_WORDS[digest[10 + i] % len(ANSWER_WORDS)]} {digest[20 + i]}"
            for i, q in enumerate(chosen)
        }

    def account(self, spec: AccountSpec, seed: int) -> SandboxAccount:
        answers = dict(spec.security_answers)
        if self.second_factor == "security_questions" and not answers:
            answers = self.security_answers(spec.username, seed)
        return SandboxAccount(
            payer=self.payer_id,
            account=spec.account,
            username=spec.username,
            password=spec.password,
            display_name=spec.display_name,
            totp_secret=self.totp_secret(spec.username, seed) if self.second_factor == "totp" else None,
            security_answers=answers,
        )

    def demo_accounts(self, seed: int = DEFAULT_SEED) -> list[SandboxAccount]:
        return [self.account(spec, seed) for spec in self.accounts]


@cache
def registry() -> dict[str, SandboxPayer]:
    import sandbox

    found: dict[str, SandboxPayer] = {}
    for info in pkgutil.iter_modules(sandbox.__path__):
        if not info.ispkg or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"sandbox.{info.name}")
        payer = getattr(module, "PAYER", None)
        if not isinstance(payer, SandboxPayer):
            continue
        if payer.payer_id in found:
            raise ValueError(f"sandbox payer id '{payer.payer_id}' is defined twice")
        found[payer.payer_id] = payer
    return found


def payer_ids() -> list[str]:
    return sorted(registry())


def get_payer(payer_id: str) -> SandboxPayer:
    """One payer, importing only its own package (a broken sibling does not stop it)."""
    import sandbox

    if payer_id.isidentifier() and any(
        m.name == payer_id and m.ispkg for m in pkgutil.iter_modules(sandbox.__path__)
    ):
        payer = getattr(importlib.import_module(f"sandbox.{payer_id}"), "PAYER", None)
        if isinstance(payer, SandboxPayer) and payer.payer_id == payer_id:
            return payer
    raise ValueError(f"unknown sandbox payer '{payer_id}' (known: {', '.join(payer_ids()) or 'none'})")


def accounts(payers: list[str] | None = None, *, seed: int = DEFAULT_SEED) -> list[SandboxAccount]:
    """The demo accounts of the named payers (all by default), without starting anything."""
    return [acct for pid in (payers or payer_ids()) for acct in get_payer(pid).demo_accounts(seed)]


INBOX_PATH = "/__sandbox/inbox/{username}"  # sandbox.control serves it, under CONTROL_PREFIX


def code_inbox(base_url: str) -> dict[str, str]:
    """The ``PAYERBOT_CODE_INBOXES`` entry that reads a sandbox portal's inbox: the sandbox is
    configured the way a deployment configures its own e-mail or SMS relay."""
    return {"source": "http", "url": base_url.rstrip("/") + INBOX_PATH, "code_field": "code"}


def code_inboxes(urls: dict[str, str]) -> dict[str, dict[str, str]]:
    """``PAYERBOT_CODE_INBOXES`` for the sandbox portals at ``urls`` (payer id -> base URL): an
    entry for each payer that sends its login code by e-mail or SMS."""
    return {
        pid: code_inbox(url) for pid, url in urls.items() if get_payer(pid).second_factor == "out_of_band"
    }
