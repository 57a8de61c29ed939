"""What a login needs, with no browser in sight: the kind of second factor, the secrets, and the
small callables that give a one-time code or a security answer.

The vault builds a ``LoginSecrets``; the session hands it to the portal's ``login``. It lives apart
from ``bot.portal`` so that the vault, which knows nothing of Playwright, can build one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from pydantic import SecretStr

from bot.errors import UnknownSecondFactorPrompt


class SecondFactorKind(StrEnum):
    TOTP = "totp"
    SECURITY_QUESTIONS = "security_questions"
    OUT_OF_BAND = "out_of_band"
    NONE = "none"


class CodeSource(Protocol):
    """Gives a fresh one-time code (TOTP, or one the portal sent by e-mail or SMS)."""

    def __call__(self) -> str: ...


class AnswerSource(Protocol):
    """Answers a security question, or raises UnknownSecondFactorPrompt."""

    def __call__(self, question: str, /) -> str: ...


def no_answers(question: str) -> str:
    raise UnknownSecondFactorPrompt(
        f"the vault holds no answer for a security question ({len(question)} chars)"
    )


@dataclass(frozen=True)
class LoginSecrets:
    """What a login needs. Secrets stay wrapped until the moment they are typed."""

    username: str
    password: SecretStr
    one_time_code: CodeSource | None = None
    answer: AnswerSource = no_answers
