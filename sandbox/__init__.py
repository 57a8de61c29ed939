"""Simulated payer portals: real web apps on loopback, with knobs, a ledger and the truth.

``SandboxServer`` serves them; ``accounts()`` lists their demo logins; ``code_inboxes()`` says where
a bot reads the codes they e-mail; ``PortalState`` is one portal's in-process state
(``server.portal(payer_id)``).
"""

from __future__ import annotations

from sandbox.knobs import Knobs
from sandbox.payers import SandboxAccount, accounts, code_inbox, code_inboxes, get_payer, payer_ids
from sandbox.server import SandboxError, SandboxServer
from sandbox.state import LedgerEntry, PortalState

__all__ = [
    "Knobs",
    "LedgerEntry",
    "PortalState",
    "SandboxAccount",
    "SandboxError",
    "SandboxServer",
    "accounts",
    "code_inbox",
    "code_inboxes",
    "get_payer",
    "payer_ids",
]
