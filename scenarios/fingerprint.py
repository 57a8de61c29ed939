"""A page's structure as the bot sees it: its controls and headings, by role and name.

The fingerprint is Playwright's ARIA snapshot reduced to the lines that name a role that a person
acts on or reads as a landmark; text content (where patient data lives) is left out. Two
fingerprints of the same page compare as added, removed and renamed controls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

ROLES = frozenset(
    {
        "button",
        "link",
        "textbox",
        "combobox",
        "listbox",
        "checkbox",
        "radio",
        "heading",
        "tab",
        "menuitem",
        "searchbox",
        "spinbutton",
        "switch",
        "dialog",
        "form",
        "table",
        "columnheader",
        "navigation",
    }
)
# a line may come single-quoted, as YAML needs it for a name holding "#" or ": " ('' is a quote)
_LINE = re.compile(r'^\s*-\s+\'?(?P<role>[a-z]+)(?:\s+"(?P<name>(?:[^"\\]|\\.)*)")?')


def reduce_aria(snapshot: str) -> list[str]:
    """``- button "Submit appeal"`` lines kept as ``button "Submit appeal"``; text dropped."""
    out: list[str] = []
    for line in snapshot.splitlines():
        m = _LINE.match(line)
        if not m or m["role"] not in ROLES:
            continue
        quoted = line.lstrip().startswith("- '")
        name = m["name"].replace("''", "'") if quoted and m["name"] is not None else m["name"]
        entry = f'{m["role"]} "{name}"' if name is not None else m["role"]
        if entry not in out:
            out.append(entry)
    return out


def page_fingerprint(page: Page) -> list[str]:
    """The page's controls, and those of its frames (a PBM portal works inside a frame, whose
    contents the page's own snapshot does not show)."""
    out: list[str] = []
    for frame in page.frames:
        try:
            lines = reduce_aria(frame.locator("body").aria_snapshot(timeout=5_000))
        except PlaywrightError:
            continue
        out += [line for line in lines if line not in out]
    return out


@dataclass(frozen=True)
class FingerprintDiff:
    added: list[str]
    removed: list[str]
    renamed: list[tuple[str, str]]

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.renamed)

    def lines(self) -> list[str]:
        out = [
            f"{old.split(' ', 1)[0]} {old.split(' ', 1)[1]} is now {new.split(' ', 1)[1]}"
            for old, new in self.renamed
            if " " in old and " " in new
        ]
        out += [f"new: {a}" for a in self.added]
        out += [f"gone: {r}" for r in self.removed]
        return out


def diff(good: list[str], now: list[str]) -> FingerprintDiff:
    """What changed from the last good fingerprint; a control gone and one of the same role
    appearing in its place reads as a rename ("button 'Submit appeal' is now 'Send request'")."""
    gone = [g for g in good if g not in now]
    new = [n for n in now if n not in good]
    renamed: list[tuple[str, str]] = []
    for old in list(gone):
        role = old.split(" ", 1)[0]
        match = next((n for n in new if n.split(" ", 1)[0] == role), None)
        if match is not None:
            renamed.append((old, match))
            gone.remove(old)
            new.remove(match)
    return FingerprintDiff(added=new, removed=gone, renamed=renamed)
