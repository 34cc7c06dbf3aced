"""The subset of Kubernetes JSONPath that CRD ``additionalPrinterColumns`` use.

``.status.url``, ``.metadata.labels['serving\\.knative\\.dev/configuration']``,
``.status.conditions[?(@.type=='Ready')].status``, ``.spec.items[0].name`` and ``[*]``:
:func:`find` returns every match, in document order (the API server prints the first).
A path outside the subset raises :class:`ValueError` when it is compiled, so a bad column
is found when the resource is registered, not when it is printed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

Step = Callable[[list[Any]], list[Any]]

_FILTER = re.compile(r"""^\?\(@((?:\.[\w-]+)+)\s*(==|!=)\s*(?:'([^']*)'|"([^"]*)"|(\S+))\)$""")


def _field(name: str) -> Step:
    return lambda values: [v[name] for v in values if isinstance(v, dict) and name in v]


def _index(i: int) -> Step:
    def step(values: list[Any]) -> list[Any]:
        return [v[i] for v in values if isinstance(v, list) and -len(v) <= i < len(v)]
    return step


def _all(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if isinstance(v, list):
            out.extend(v)
        elif isinstance(v, dict):
            out.extend(v.values())
    return out


def _literal(quoted1: str | None, quoted2: str | None, bare: str | None) -> Any:
    if quoted1 is not None:
        return quoted1
    if quoted2 is not None:
        return quoted2
    assert bare is not None
    if bare in ("true", "false"):
        return bare == "true"
    try:
        return int(bare)
    except ValueError:
        try:
            return float(bare)
        except ValueError as exc:
            raise ValueError(f"unsupported JSONPath filter literal {bare!r}") from exc


def _filter(expr: str) -> Step:
    m = _FILTER.match(expr)
    if m is None:
        raise ValueError(f"unsupported JSONPath filter [{expr}]")
    keys = m.group(1).strip(".").split(".")
    negate = m.group(2) == "!="
    want = _literal(m.group(3), m.group(4), m.group(5))

    def value_of(item: Any) -> Any:
        for k in keys:
            if not isinstance(item, dict) or k not in item:
                return _MISSING
            item = item[k]
        return item

    def step(values: list[Any]) -> list[Any]:
        out = []
        for v in _all(values):
            got = value_of(v)
            if got is _MISSING:
                continue
            if (got == want and type(got) is type(want)) != negate:
                out.append(v)
        return out
    return step


_MISSING = object()


@lru_cache(maxsize=256)
def compile_path(path: str) -> tuple[Step, ...]:
    """Compile a JSONPath (``{...}`` braces optional) into steps; ValueError if unsupported."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    if text.startswith("$"):
        text = text[1:]
    steps: list[Step] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == ".":
            j = i + 1
            while j < len(text) and text[j] not in ".[":
                j += 1
            name = text[i + 1:j]
            if name == "*":
                steps.append(_all)
            elif name:
                steps.append(_field(name))
            i = j
        elif ch == "[":
            depth, j = 0, i
            quote = ""
            while j < len(text):
                c = text[j]
                if quote:
                    if c == "\\":
                        j += 2
                        continue
                    if c == quote:
                        quote = ""
                elif c in "'\"":
                    quote = c
                elif c == "[":
                    depth += 1
                elif c == "]":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= len(text):
                raise ValueError(f"unclosed [ in JSONPath {path!r}")
            inner = text[i + 1:j].strip()
            if inner == "*":
                steps.append(_all)
            elif inner.startswith("?"):
                steps.append(_filter(inner))
            elif inner[:1] in "'\"" and inner[-1:] == inner[:1]:
                steps.append(_field(re.sub(r"\\(.)", r"\1", inner[1:-1])))
            else:
                try:
                    steps.append(_index(int(inner)))
                except ValueError as exc:
                    raise ValueError(f"unsupported JSONPath subscript [{inner}]") from exc
            i = j + 1
        else:
            raise ValueError(f"unsupported JSONPath {path!r} (at {text[i:]!r})")
    return tuple(steps)


def find(obj: Any, path: str) -> list[Any]:
    """Every value ``path`` selects in ``obj`` ([] when nothing matches)."""
    values = [obj]
    for step in compile_path(path):
        values = step(values)
        if not values:
            return []
    return values
