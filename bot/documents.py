"""Resolving the documents an approved appeal names, and checking they are what was approved."""

from __future__ import annotations

from pathlib import Path

from bot.errors import Terminal
from bot.evidence import sha256_file
from bot.models import AppealRequest, DocumentRef
from bot.portal import AppealFiles


class DocumentProblem(Terminal):
    """A document named by the appeal is missing, unreadable, or not the one that was approved."""


def resolve(ref: DocumentRef, documents_dir: Path | None, field: str) -> Path:
    path = Path(ref.path)
    if not path.is_absolute():
        if documents_dir is None:
            raise DocumentProblem(f"{field}: a relative path needs PAYERBOT_DOCUMENTS_DIR")
        path = documents_dir / path
    if not path.is_file():
        raise DocumentProblem(f"{field}: no file at the referenced path ({path.name})")
    if ref.sha256 is not None and sha256_file(path) != ref.sha256:
        raise DocumentProblem(f"{field}: the file's SHA-256 differs from the approved one ({path.name})")
    return path


def appeal_files(request: AppealRequest, documents_dir: Path | None) -> AppealFiles:
    letter = resolve(request.letter, documents_dir, "payload.letter")
    attachments = [
        resolve(ref, documents_dir, f"payload.attachments[{i}]") for i, ref in enumerate(request.attachments)
    ]
    return AppealFiles(letter=letter, attachments=attachments)
