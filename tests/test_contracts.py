"""The layer rule and the type checker, run where every other test runs (``./run test``, CI).

``lint-imports`` checks the contracts in pyproject.toml: the layer order, who may import the
sandbox, no Playwright in the queue, the vault or the core, and page objects that know nothing of
the queue or the vault. mypy checks the packages in strict mode. Each prints its own report when
it fails.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "portals", "vault", "scenarios", "sandbox")


def _run(*command: str) -> tuple[int, str, float]:
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    return done.returncode, f"{done.stdout}\n{done.stderr}".strip(), time.monotonic() - started


def test_imports_keep_the_layer_contracts() -> None:
    code, output, seconds = _run(str(Path(sys.executable).parent / "lint-imports"))
    print(f"lint-imports: {seconds:.1f} s")
    assert code == 0, f"lint-imports failed:\n{output}"


def test_mypy_strict_finds_nothing() -> None:
    code, output, seconds = _run(sys.executable, "-m", "mypy")  # files and options: pyproject.toml
    print(f"mypy: {seconds:.1f} s")
    assert code == 0, f"mypy failed:\n{output}"


def _layer_modules() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    [layers] = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    names = (name.strip() for layer in layers["layers"] for name in layer.replace("|", ":").split(":"))
    return {name for name in names if name}


def test_every_module_sits_in_a_layer() -> None:
    """A module in no layer escapes the contract: a new one must be placed (pyproject.toml)."""
    layered = _layer_modules()
    unplaced, containers_with_code = [], []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            if any(name == m or name.startswith(f"{m}.") for m in layered):
                continue
            if any(m.startswith(f"{name}.") for m in layered):  # a package that holds layers
                tree = ast.parse(path.read_text(encoding="utf-8"))
                if any(isinstance(node, ast.Import | ast.ImportFrom) for node in ast.walk(tree)):
                    containers_with_code.append(name)
                continue
            unplaced.append(name)
    assert not unplaced, f"modules in no layer of pyproject.toml's layers contract: {unplaced}"
    assert not containers_with_code, f"packages that hold layers must hold no code: {containers_with_code}"


def test_the_queue_and_the_vault_load_no_browser_library() -> None:
    """The contract reads imports; this imports them, as a process that only queues work would."""
    probe = (
        "import sys, bot.queue, bot.queue.intake, vault, bot.documents, bot.login\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('playwright', 'portals')))"
    )
    code, output, _ = _run(sys.executable, "-c", probe)
    assert code == 0, output
    assert output == "[]", f"importing the queue and the vault loaded: {output}"
