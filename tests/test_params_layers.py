"""The parameter modules stack without a cycle: each imports only the ones below it.

``params`` (the record) < ``knobs`` (the key tables) < ``profiles`` < ``findings`` <
``resolve`` (the resolver), with ``predictions`` beside ``resolve``. Every import counts,
also one inside a function, so a cycle cannot hide behind a late import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import harness

PACKAGE = Path(harness.__file__).parent

ALLOWED = {
    "params": set(),
    "durations": set(),
    "errors": set(),
    "knobs": {"durations", "errors", "params"},
    "profiles": {"durations", "errors", "knobs", "params", "files"},
    "findings": {"durations", "knobs", "params", "profiles"},
    "resolve": {"errors", "findings", "knobs", "params", "profiles", "files"},
    "predictions": {"kpa", "params"},
}


def harness_imports(module: str) -> set[str]:
    """The first component below ``harness`` of every module that ``module`` imports."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
            if node.module == "harness":
                names = [f"harness.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "harness" and len(parts) > 1:
                out.add(parts[1])
    return out


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_imports_only_downward(module: str) -> None:
    extra = harness_imports(module) - ALLOWED[module]
    assert not extra, f"harness.{module} imports {sorted(extra)}, above or beside it"


def test_the_checker_sees_a_late_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "late.py").write_text(
        "def f():\n    from harness.resolve import resolve\n    return resolve\n"
    )
    monkeypatch.setattr(__import__(__name__), "PACKAGE", tmp_path)
    assert harness_imports("late") == {"resolve"}
