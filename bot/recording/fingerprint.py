"""A page's structure as the bot sees it: its controls and headings, by role and name.

The fingerprint is Playwright's ARIA snapshot reduced to the lines that name a role that a person
acts on or reads as a landmark; text content (where patient data lives) is left out. It is kept for
every page in ``page_fingerprints`` and in bundles, so it holds structure, never record values:
whatever sits in a row, cell or list item of a table, grid or list keeps its role but not its name
(column headers, a menu's links and a form field's label excepted), and any name left that holds a
record-like token (a digit, an e-mail, a date) has it replaced by ``#``. Two fingerprints of the
same page compare as added, removed and renamed controls.
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
# the parts of a table, grid, list or tree that hold one record: a name inside one is its value
RECORD_PARTS = frozenset({"row", "cell", "gridcell", "rowheader", "listitem", "option", "treeitem"})
# a menu is often a list inside a navigation landmark: its items are the site's links, not records
MENUS = frozenset({"navigation", "menu", "menubar", "tablist", "toolbar"})
# fields named by their form label, which a layout table (cells around a form) does not make a value
LABELLED = frozenset({"textbox", "searchbox", "combobox", "listbox", "spinbutton"})
PLACEHOLDER = "#"
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b\.?"
)
# record-like tokens, failing closed: a date written with a month name, an e-mail, any token with a
# digit (claim, PA, member and Rx numbers, numeric dates, amounts), then a run of placeholders as one
_RECORD_TOKENS = (
    re.compile(
        rf"\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?(?:\s+\d{{2,4}})?|\b\d{{1,2}}\s+{_MONTH}(?:\s+\d{{2,4}})?",
        re.I,
    ),
    re.compile(r"\S+@\S+"),
    re.compile(r"\S*\d\S*"),
)
_PLACEHOLDERS = re.compile(rf"{re.escape(PLACEHOLDER)}(?:\s+{re.escape(PLACEHOLDER)})+")
# a line may come single-quoted, as YAML needs it for a name holding "#" or ": " ('' is a quote)
_LINE = re.compile(r'^(?P<indent>\s*)-\s+\'?(?P<role>[a-z]+)(?:\s+"(?P<name>(?:[^"\\]|\\.)*)")?')


def without_values(name: str) -> str:
    """The name with each record-like token replaced: "Claim MH2026000123" is "Claim #"."""
    for pattern in _RECORD_TOKENS:
        name = pattern.sub(PLACEHOLDER, name)
    return _PLACEHOLDERS.sub(PLACEHOLDER, name)


def in_record(role: str, ancestors: list[str]) -> bool:
    """Whether a line of ``role`` under ``ancestors`` (outermost first) names a record's value."""
    if role == "columnheader" or role in LABELLED:
        return False
    for depth in range(len(ancestors) - 1, -1, -1):
        above = ancestors[depth]
        if above == "columnheader":  # a sort button in a header names the column
            return False
        if above in RECORD_PARTS:
            if above == "listitem" and MENUS.intersection(ancestors[:depth]):
                continue
            return True
    return False


def reduce_aria(snapshot: str) -> list[str]:
    """``- button "Submit appeal"`` lines kept as ``button "Submit appeal"``; text dropped, and
    names inside records dropped or stripped of their values (see the module's docstring)."""
    out: list[str] = []
    stack: list[tuple[int, str]] = []  # (indent, role) of the lines enclosing this one
    for line in snapshot.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        indent, role = len(m["indent"]), m["role"]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        ancestors = [r for _, r in stack]
        stack.append((indent, role))
        if role not in ROLES:
            continue
        name = m["name"]
        if name is not None and line.lstrip().startswith("- '"):
            name = name.replace("''", "'")
        if name is not None and in_record(role, ancestors):
            name = None
        entry = f'{role} "{without_values(name)}"' if name is not None else role
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
        out = [f"{old} is now {new.split(' ', 1)[1]}" for old, new in self.renamed]
        out += [f"new: {a}" for a in self.added]
        out += [f"gone: {r}" for r in self.removed]
        return out


def diff(good: list[str], now: list[str]) -> FingerprintDiff:
    """What changed from the last good fingerprint; a control gone and one of the same role
    appearing in its place reads as a rename ("button 'Submit appeal' is now 'Send request'")."""
    gone = [g for g in good if g not in now]
    new = [n for n in now if n not in good]
    renamed: list[tuple[str, str]] = []
    for old in [g for g in gone if " " in g]:  # a nameless entry has no name to be renamed from
        role = old.split(" ", 1)[0]
        match = next((n for n in new if " " in n and n.split(" ", 1)[0] == role), None)
        if match is not None:
            renamed.append((old, match))
            gone.remove(old)
            new.remove(match)
    return FingerprintDiff(added=new, removed=gone, renamed=renamed)
