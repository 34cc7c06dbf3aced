"""The import rule of ``docs/architecture.md``: no cycle in ``harness/``, and every import
allowed by the table there (the one place the rule lives; this test reads it).

The graph is built with ``ast`` from every module of ``harness/``: ``import x`` and
``from x import y`` (``x`` and, when it is a module, ``x.y``), at module level and inside
functions alike, relative imports resolved. Third-party imports are not in the graph, except
that gevent and Locust may only be imported by ``harness.load.child``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

import harness

PACKAGE = Path(harness.__file__).resolve().parent
DOC = PACKAGE.parent / "docs" / "architecture.md"
CHILD_ONLY = ("gevent", "locust")


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``root`` (a package)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imported_names(module: str, path: Path) -> set[str]:
    """Every dotted name an import statement of ``module`` names (anywhere in the file)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of ``mods`` it imports."""
    return {m: {n for n in imported_names(m, p) if n in mods and n != m}
            for m, p in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def rule(text: str) -> dict[str, set[str]]:
    """The table under ``## Import rule``: row name -> the names it may import."""
    section = text.split("\n## Import rule", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, set[str]] = {}
    for line in section.splitlines():
        m = re.match(r"\|\s*`([\w.]+)`\s*\|(.*)\|\s*$", line)
        if m:
            assert m.group(1) not in rows, f"two rows for {m.group(1)}"
            rows[m.group(1)] = set(re.findall(r"`([\w.]+)`", m.group(2)))
    return rows


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def row_of(module: str, rows: Iterable[str]) -> str | None:
    """The longest row that claims ``module`` (``harness`` claims only the package itself)."""
    found = [r for r in rows if module == r or (r != "harness" and _under(module, r))]
    return max(found, key=len) if found else None


def violations(edges: dict[str, set[str]], rows: dict[str, set[str]]) -> list[str]:
    out = []
    for m in sorted(edges):
        own = row_of(m, rows)
        if own is None:
            out.append(f"{m}: no row in the table")
            continue
        for target in sorted(edges[m]):
            if row_of(target, rows) == own or any(_under(target, p) for p in rows[own]):
                continue
            out.append(f"{m} imports {target} ({own} may import: "
                       f"{', '.join(sorted(rows[own])) or 'nothing'})")
    return out


MODULES = modules(PACKAGE)
EDGES = graph(MODULES)
RULE = rule(DOC.read_text(encoding="utf-8"))


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("import pkg.b\n")
    (pkg / "b.py").write_text("def f():\n    from pkg.sub import c\n    return c\n")
    (pkg / "sub" / "c.py").write_text("from ..a import x\n")
    (pkg / "d.py").write_text("from . import a\n")
    edges = graph(modules(pkg))
    assert edges["pkg.a"] == {"pkg.b"}
    assert edges["pkg.b"] == {"pkg.sub", "pkg.sub.c"}
    assert edges["pkg.sub.c"] == {"pkg.a"}
    assert edges["pkg.d"] == {"pkg", "pkg.a"}
    assert cycles(edges) == [["pkg.a", "pkg.b", "pkg.sub.c"]]


def test_the_rule_catches_an_upward_import() -> None:
    rows = {"harness": set(), "harness.kube": {"harness.errors"}, "harness.errors": set(),
            "harness.observe": {"harness.kube"}}
    edges = {"harness.kube.a": {"harness.errors", "harness.kube.b", "harness.observe.f"},
             "harness.kube.b": set(), "harness.observe.f": {"harness.kube.a"},
             "harness.new": set()}
    assert violations(edges, rows) == [
        "harness.kube.a imports harness.observe.f (harness.kube may import: harness.errors)",
        "harness.new: no row in the table"]


def test_no_import_cycle() -> None:
    found = cycles(EDGES)
    assert not found, "import cycles in harness/: " + "; ".join(" <-> ".join(c) for c in found)


def test_every_import_follows_the_documented_layering() -> None:
    wrong = violations(EDGES, RULE)
    assert not wrong, "imports that break docs/architecture.md's rule:\n" + "\n".join(wrong)


def test_every_row_names_a_module_of_the_package() -> None:
    """A row for a module that is gone would hide a typo."""
    names = set(RULE) | {n for allowed in RULE.values() for n in allowed}
    unknown = {n for n in names if not any(_under(m, n) for m in MODULES)}
    assert not unknown, f"rows naming no module of harness/: {sorted(unknown)}"


def test_gevent_and_locust_only_in_the_child_package() -> None:
    bad = {m: sorted(n for n in imported_names(m, p) if n.split(".")[0] in CHILD_ONLY)
           for m, p in MODULES.items() if not _under(m, "harness.load.child")}
    bad = {m: names for m, names in bad.items() if names}
    assert not bad, f"only harness.load.child may import gevent or Locust: {bad}"
