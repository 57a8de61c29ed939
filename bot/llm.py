"""Unknown status wording to a language model (any OpenAI-compatible server), off by default.

Only the wording and the payer's codes go to the model, after identifiers are stripped: numbers
of four digits or more, dates, e-mail addresses, phone numbers and every patient value the page
showed. The answer must fit a JSON schema (a category code the code list knows, a confidence); an
answer that does not is treated as no answer. The mapper stores what it takes with ``source=llm``
and sends a low-confidence answer to a person.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from bot.codelists import CodeLists
from bot.logging import get_logger
from bot.models import ClaimReading, CodeSystem, PaReading, Reading
from bot.redact import Redactor
from bot.settings import Settings
from bot.status import ClaimRule, PaDecision, PaRule

log = get_logger()

_PATTERNS = [
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+"), "<email>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b"), "<date>"),
    (re.compile(r"\(?\b\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b"), "<phone>"),
    (re.compile(r"\b[A-Za-z]*\d[A-Za-z0-9-]{3,}\b"), "<id>"),
]

CLAIM_CATEGORIES = (
    "A0",
    "A1",
    "A2",
    "A3",
    "A4",
    "A5",
    "A6",
    "A7",
    "A8",
    "P0",
    "P1",
    "P2",
    "P3",
    "P4",
    "P5",
    "F0",
    "F1",
    "F2",
    "F3",
    "F4",
    "R0",
    "R1",
    "R3",
    "R4",
    "R5",
    "E0",
    "E1",
    "E2",
    "E3",
    "E4",
)


def strip_identifiers(text: str, sensitive: Redactor | None = None) -> str:
    if sensitive is not None:
        text = sensitive.scrub(text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class ClaimAnswer(BaseModel):
    category: str = Field(pattern=r"^(A[0-8]|P[0-5]|F[0-5]|R\d{1,2}|E[0-4])$")
    confidence: float = Field(ge=0, le=1)


class PaAnswer(BaseModel):
    decision: PaDecision
    confidence: float = Field(ge=0, le=1)


def _schema(name: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {
            "name": name,
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {**properties, "confidence": {"type": "number", "minimum": 0, "maximum": 1}},
                "required": [*properties, "confidence"],
                "additionalProperties": False,
            },
        },
    }


class LlmClassifier:
    """A ``WordingClassifier`` backed by an OpenAI-compatible chat completions endpoint."""

    def __init__(self, client: Any, model: str, codelists: CodeLists) -> None:
        self.client = client
        self.model = model
        self.codelists = codelists

    def _prompt(self, payer: str, reading: Reading, question: str) -> str:
        scrubber = Redactor()
        scrubber.add(*reading.sensitive)
        codes = "; ".join(
            f"{c.system.value} {c.code}: {self.codelists.describe(c.system, c.code) or c.description or ''}"
            for c in reading.codes
        )
        wording = strip_identifiers(reading.status_text, scrubber)
        detail = strip_identifiers(reading.detail or "", scrubber)
        return (
            f"A payer portal ({payer}) shows this status line: {wording!r}. "
            f"Detail: {detail!r}. Codes shown: {strip_identifiers(codes, scrubber) or 'none'}. {question} "
            "Answer with your confidence between 0 and 1; be honest when unsure."
        )

    def _ask(self, prompt: str, response_format: dict[str, Any]) -> dict[str, Any] | None:
        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=[
                    {
                        "role": "system",
                        "content": "You classify health insurance claim and authorization "
                        "statuses into standard X12 codes. Reply in JSON only.",
                    },
                    {"role": "user", "content": prompt},
                ],
                response_format=response_format,
                temperature=0,
            )
            return json.loads(response.choices[0].message.content or "null")  # type: ignore[no-any-return]
        except Exception as exc:  # a model that is down or talks nonsense is "no answer"
            log.warning("model gave no usable answer", error_kind=type(exc).__name__)
            return None

    def classify_claim(self, payer: str, reading: ClaimReading) -> tuple[ClaimRule, float] | None:
        question = (
            f"Which X12 277 claim status category code (STC01-1) fits? One of: {', '.join(CLAIM_CATEGORIES)}."
        )
        data = self._ask(
            self._prompt(payer, reading, question),
            _schema("claim_status", {"category": {"type": "string", "enum": list(CLAIM_CATEGORIES)}}),
        )
        try:
            answer = ClaimAnswer.model_validate(data)
        except ValidationError:
            return None
        if self.codelists.get(CodeSystem.X12_CATEGORY, answer.category) is None:
            return None
        return ClaimRule(category=answer.category), answer.confidence

    def classify_pa(self, payer: str, reading: PaReading) -> tuple[PaRule, float] | None:
        decisions = [d.value for d in PaDecision]
        question = f"Which prior authorization decision fits? One of: {', '.join(decisions)}."
        data = self._ask(
            self._prompt(payer, reading, question),
            _schema("pa_status", {"decision": {"type": "string", "enum": decisions}}),
        )
        try:
            answer = PaAnswer.model_validate(data)
        except ValidationError:
            return None
        return PaRule(decision=answer.decision), answer.confidence


def classifier_from_settings(settings: Settings) -> LlmClassifier | None:
    """The classifier when ``PAYERBOT_LLM_MODEL`` is set (``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``
    are read by the OpenAI client itself)."""
    if not settings.llm_model:
        return None
    import os

    from openai import OpenAI

    from bot.codelists import load_codelists

    client = OpenAI(api_key=os.environ.get("OPENAI_API_KEY") or "unset", max_retries=1, timeout=30)
    return LlmClassifier(client, settings.llm_model, load_codelists(settings.codelists_dir))
