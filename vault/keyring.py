"""Vault keys: a keyring with one active key (seals) and older keys (still open old records).

The keyring's text form is one key per line, ``kid:base64key``, the first line active; blank lines
and ``#`` comments are ignored. A bare base64 key is accepted too, its id derived from a hash of
the key, so ``PAYERBOT_VAULT_KEY=<key>`` works without naming it. In an environment variable,
entries may be separated by commas or spaces instead of newlines.

Key bytes never appear in a repr, a message or an exception: errors name the key id and the line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import VaultKeyError

if TYPE_CHECKING:
    from bot.settings import Settings

KEY_BYTES = 32  # AES-256
KID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def derive_kid(key: bytes) -> str:
    """The id of a key given without one: a short hash, stable and revealing nothing useful."""
    return "k" + hashlib.sha256(b"payerbot-vault-kid\x00" + key).hexdigest()[:12]


@dataclass(frozen=True)
class VaultKey:
    kid: str
    material: bytes = field(repr=False)

    def line(self) -> str:
        """The keyring line for this key (it holds the key: write it only where keys belong)."""
        return f"{self.kid}:{base64.b64encode(self.material).decode()}"


def new_key(kid: str | None = None) -> VaultKey:
    material = secrets.token_bytes(KEY_BYTES)
    kid = kid or derive_kid(material)
    _check_kid(kid, where="--kid")
    return VaultKey(kid, material)


def _check_kid(kid: str, *, where: str) -> None:
    if not KID_PATTERN.match(kid):
        # not echoed: a line written "key:kid" the wrong way round would print the key
        raise VaultKeyError(
            f"{where}: the key id must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (lines are kid:base64key)"
        )


def _decode(text: str, *, where: str) -> bytes:
    try:
        material = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise VaultKeyError(f"{where}: the key is not valid base64") from None
    if len(material) != KEY_BYTES:
        raise VaultKeyError(
            f"{where}: the key is {len(material)} bytes; a vault key is {KEY_BYTES} bytes "
            "(`payerbot vault keygen` makes one)"
        )
    return material


def _entries(text: str, *, source: str, lines_only: bool) -> Iterator[tuple[str, str]]:
    """(where, entry) for every key entry in a keyring text."""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [line] if lines_only else [p for p in re.split(r"[,\s]+", line) if p]
        for index, part in enumerate(parts, start=1):
            where = f"{source} line {number}" + (f" entry {index}" if len(parts) > 1 else "")
            yield where, part


class Keyring:
    """The keys the vault may use: ``active`` seals new records, every key may open old ones."""

    def __init__(self, keys: Iterable[VaultKey], *, source: str = "keyring") -> None:
        self._keys: dict[str, VaultKey] = {}
        for key in keys:
            if key.kid in self._keys:
                raise VaultKeyError(f"{source}: key id '{key.kid}' appears twice")
            self._keys[key.kid] = key
        if not self._keys:
            raise VaultKeyError(f"{source}: holds no key (`payerbot vault keygen` makes one)")
        self.source = source

    @classmethod
    def generate(cls, kid: str | None = None) -> Keyring:
        return cls([new_key(kid)], source="generated key")

    @classmethod
    def parse(cls, text: str, *, source: str = "keyring", lines_only: bool = True) -> Keyring:
        keys = []
        for where, entry in _entries(text, source=source, lines_only=lines_only):
            # base64 has no ':' so "kid:key" splits unambiguously
            kid, sep, encoded = entry.partition(":")
            if not sep:
                material = _decode(entry, where=where)
                keys.append(VaultKey(derive_kid(material), material))
                continue
            _check_kid(kid, where=where)
            keys.append(VaultKey(kid, _decode(encoded, where=where)))
        return cls(keys, source=source)

    @classmethod
    def from_file(cls, path: Path) -> Keyring:
        return cls.parse(read_key_file(path), source=str(path))

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        """The keyring from ``PAYERBOT_VAULT_KEY`` or ``PAYERBOT_VAULT_KEY_FILE`` (not both)."""
        if settings.vault_key is not None and settings.vault_key_file is not None:
            raise VaultKeyError("both PAYERBOT_VAULT_KEY and PAYERBOT_VAULT_KEY_FILE are set; set only one")
        if settings.vault_key_file is not None:
            return cls.from_file(settings.vault_key_file)
        if settings.vault_key is not None:
            return cls.parse(
                settings.vault_key.get_secret_value(), source="PAYERBOT_VAULT_KEY", lines_only=False
            )
        raise VaultKeyError(
            "no vault key: set PAYERBOT_VAULT_KEY or PAYERBOT_VAULT_KEY_FILE "
            "(`payerbot vault keygen --out FILE` makes a key file)"
        )

    @property
    def active(self) -> VaultKey:
        return next(iter(self._keys.values()))

    @property
    def kids(self) -> list[str]:
        return list(self._keys)

    def get(self, kid: str) -> VaultKey | None:
        return self._keys.get(kid)

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def with_new_active(self, key: VaultKey) -> Keyring:
        return Keyring([key, *self._keys.values()], source=self.source)

    def without(self, kid: str) -> Keyring:
        if kid not in self._keys:
            raise VaultKeyError(f"{self.source}: has no key '{kid}' (it has: {', '.join(self.kids)})")
        if kid == self.active.kid:
            raise VaultKeyError(f"key '{kid}' is the active key; make another key active first")
        return Keyring([k for k in self._keys.values() if k.kid != kid], source=self.source)

    def dump(self) -> str:
        """The keyring's text (holds the keys), first line active."""
        header = "# payerbot vault keyring: kid:base64key per line, the first is the active key\n"
        return header + "".join(key.line() + "\n" for key in self._keys.values())

    def __repr__(self) -> str:
        return f"Keyring(active={self.active.kid!r}, kids={self.kids!r})"


# --- key files ------------------------------------------------------------------------------


def check_key_file_mode(path: Path) -> None:
    """Refuse a key file that anyone but its owner may read or write."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise VaultKeyError(f"vault key file {path} does not exist") from None
    if not stat.S_ISREG(mode):
        raise VaultKeyError(f"vault key file {path} is not a regular file")
    if mode & 0o077:
        raise VaultKeyError(
            f"vault key file {path} has mode {stat.S_IMODE(mode):04o}: group or others may use it; "
            f"run `chmod 600 {path}`"
        )


def read_key_file(path: Path) -> str:
    check_key_file_mode(path)
    try:
        return path.read_text(encoding="ascii")
    except UnicodeDecodeError:
        raise VaultKeyError(f"vault key file {path} is not a text keyring") from None
    except OSError as exc:
        raise VaultKeyError(f"vault key file {path} cannot be read: {exc.strerror}") from None


def create_key_file(path: Path, keyring: Keyring) -> None:
    """Write a new key file, mode 0600 from its creation; refuse to overwrite one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise VaultKeyError(
            f"{path} already exists; use `payerbot vault keygen --add-to {path}` to add a key to it"
        ) from None
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(keyring.dump())


def replace_key_file(path: Path, keyring: Keyring) -> None:
    """Rewrite a key file atomically (a crash leaves the old file or the new one, never half)."""
    check_key_file_mode(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(keyring.dump())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
