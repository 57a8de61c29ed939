"""Resolving the documents an approved appeal names, and checking they are what was approved."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import TracebackType

from bot.errors import DocumentProblem
from bot.models import AppealRequest, DocumentRef

MAGIC: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/tiff": (b"II*\x00", b"MM\x00*"),  # little- and big-endian
}
"""The first bytes of each allowed media type (``bot.models.MediaType``)."""

_PROC_FD = Path("/proc/self/fd")
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
"""The largest document a portal takes unless its module says otherwise (``Portal.max_upload_bytes``)."""


def documents_fields(request: AppealRequest) -> list[tuple[str, DocumentRef]]:
    """Each document of an appeal with its field, named as intake names fields."""
    fields = [("payload.letter", request.letter)]
    return fields + [(f"payload.attachments.{i}", ref) for i, ref in enumerate(request.attachments)]


def escapes(documents_dir: Path, relative: str) -> bool:
    """True when ``relative`` under the folder leads, after symlinks, somewhere outside it.

    Symlinks are followed as far as they exist, so a link whose target is not there yet is judged
    by where it points.
    """
    base = Path(os.path.realpath(documents_dir))
    return not Path(os.path.realpath(base / relative)).is_relative_to(base)


@dataclass(frozen=True)
class AppealFiles:
    """The approved letter and attachments, resolved to local files whose digests were checked."""

    letter: Path
    attachments: Sequence[Path] = ()


@dataclass(frozen=True)
class StagedFiles(AppealFiles):
    """Private copies of the approved documents (0600 files in 0700 folders) for the portal to
    upload; ``close`` (or leaving ``with``) removes them. The original may change after the check:
    the copies hold the bytes that were hashed."""

    folder: Path = field(kw_only=True)
    _remove: Callable[[], object] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # copies a caller forgot to close are still removed when this object is collected
        object.__setattr__(self, "_remove", weakref.finalize(self, shutil.rmtree, self.folder, True))

    def close(self) -> None:
        self._remove()

    def __enter__(self) -> StagedFiles:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def appeal_files(
    request: AppealRequest, documents_dir: Path | None, max_bytes: int = MAX_UPLOAD_BYTES
) -> StagedFiles:
    """Check every document of ``request`` and copy its approved bytes to a private folder.

    Each file must lie, after symlinks, inside ``documents_dir``, be a regular file of at most
    ``max_bytes`` (the payer's limit), hash to the approved SHA-256 and start like its media type.
    It is read once: the bytes checked are the bytes copied, and the copy (same base name) is what
    the portal uploads.
    """
    if documents_dir is None:
        raise DocumentProblem("payload.letter: PAYERBOT_DOCUMENTS_DIR is not set; no document can be read")
    folder = Path(tempfile.mkdtemp(prefix="payerbot-upload-"))  # 0700, under TMPDIR
    try:
        copies = [
            _stage(ref, documents_dir, name, max_bytes, folder / str(i))
            for i, (name, ref) in enumerate(documents_fields(request))
        ]
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return StagedFiles(letter=copies[0], attachments=copies[1:], folder=folder)


def _stage(ref: DocumentRef, documents_dir: Path, name: str, max_bytes: int, into: Path) -> Path:
    """Check one document and write its bytes to ``into/<its base name>``."""
    where = f"{name}.path"
    data = _read_once(_open_inside(documents_dir, ref.path, where), max_bytes, where)
    if hashlib.sha256(data).hexdigest() != ref.sha256:
        raise DocumentProblem(f"{name}.sha256: the file differs from the approved one")
    if not data.startswith(MAGIC[ref.media_type]):
        raise DocumentProblem(f"{name}.media_type: the content is not {ref.media_type}")
    into.mkdir(mode=0o700)
    copy = into / PurePosixPath(ref.path).name
    fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return copy


def _open_inside(documents_dir: Path, relative: str, where: str) -> int:
    """A read descriptor on the file, checked to lie inside the folder after symlinks."""
    outside = DocumentProblem(f"{where}: the file resolves outside PAYERBOT_DOCUMENTS_DIR")
    base = Path(os.path.realpath(documents_dir))
    try:
        real = (base / relative).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, a dangling link or a loop
        raise DocumentProblem(f"{where}: no file at the referenced path") from None
    if not real.is_relative_to(base):
        raise outside
    try:
        # no-follow: a link swapped in after the resolve is refused; non-blocking: a FIFO cannot hang us
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        raise DocumentProblem(f"{where}: the file cannot be opened") from None
    # where the descriptor really leads, in case a folder on the way was swapped after the resolve
    opened = _PROC_FD / str(fd)
    if _PROC_FD.is_dir() and not Path(os.readlink(opened)).is_relative_to(base):
        os.close(fd)
        raise outside
    return fd


def _read_once(fd: int, max_bytes: int, where: str) -> bytes:
    """All of a regular file's bytes, or a DocumentProblem when it is larger than ``max_bytes``."""
    too_large = DocumentProblem(f"{where}: larger than the payer's limit of {max_bytes} bytes")
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise DocumentProblem(f"{where}: not a regular file")
        if info.st_size > max_bytes:
            raise too_large
        data = handle.read(max_bytes + 1)  # a file that grew since fstat is caught as well
    if len(data) > max_bytes:
        raise too_large
    return data


def write_letter(folder: Path, name: str, text: str) -> Path:
    """A small, valid one-page PDF with ``text`` on it: a synthetic appeal letter (the demo's, the
    catalog's, or the stand-in an offline replay uploads when the approved one is not on this machine)."""
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path = folder / name
    path.write_bytes(bytes(out))
    return path
