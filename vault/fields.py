"""The names of an account's vault records, and what an operator may see about an account."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import datetime

from pydantic import BaseModel, ConfigDict

USERNAME = "username"
PASSWORD = "password"  # noqa: S105 (a record field name)
TOTP = "totp_secret"
SESSION = "session"
PORTAL_URL = "portal_url"  # sealed, so only the vault key holder can say where a login goes
ANSWER_PREFIX = "answer:"


def normalize_question(question: str) -> str:
    """The form two wordings of one question share: case, spacing and end punctuation ignored."""
    text = unicodedata.normalize("NFKC", question).casefold()
    return re.sub(r"\s+", " ", text).strip().rstrip("?:.!").strip()


def answer_field(question: str) -> str:
    """The record field of a question's answer: a hash, so the question is not stored in clear."""
    digest = hashlib.sha256(normalize_question(question).encode()).hexdigest()
    return ANSWER_PREFIX + digest[:32]


class AccountInfo(BaseModel):
    """One account as `payerbot vault list` shows it: no secret, no username."""

    model_config = ConfigDict(frozen=True)

    payer: str
    account: str
    portal_url: str | None
    portal_url_sealed: bool  # False for an account stored before URLs were sealed: it cannot log in
    second_factor: str
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    has_session: bool
    session_saved_at: datetime | None
    answers: int
    key_ids: list[str]
    created_at: datetime
