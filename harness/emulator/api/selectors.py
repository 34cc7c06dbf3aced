"""Label and field selectors, parsed and matched as k8s.io/apimachinery does.

``parse_label_selector("app=web,tier notin (db),!legacy")`` returns a
:class:`LabelSelector`; ``label_selector_from_object({"matchLabels": ..., "matchExpressions":
...})`` builds the same from the object form. ``parse_field_selector`` accepts ``f=v``,
``f==v`` and ``f!=v`` with backslash escapes. Bad syntax raises :class:`SelectorError`
(the HTTP layer answers 400 BadRequest). :func:`node_requirement` turns a node-affinity
expression into the same :class:`Requirement` (the scheduler matches nodes with it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class SelectorError(ValueError):
    """A selector that does not parse or uses an unsupported field."""


_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY_RE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?" + _NAME + "$")
_VALUE_RE = re.compile(r"^(" + _NAME + ")?$")


def valid_label_key(key: str) -> bool:
    if not _KEY_RE.match(key):
        return False
    if "/" in key and len(key.split("/", 1)[0]) > 253:
        return False
    return len(key.rsplit("/", 1)[-1]) <= 63


def valid_label_value(value: str) -> bool:
    return len(value) <= 63 and bool(_VALUE_RE.match(value))


@dataclass(frozen=True)
class Requirement:
    """One ANDed term: ``key op values``; op in =, !=, in, notin, exists, !, gt, lt."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("gt", "lt"):
            if not present:
                return False
            try:
                have = int(str(value))
            except ValueError:
                return False
            want = int(self.values[0])
            return have > want if self.op == "gt" else have < want
        raise AssertionError(self.op)


@dataclass(frozen=True)
class LabelSelector:
    """ANDed requirements; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


_TOKEN_RE = re.compile(r"\s*(!=|==|=|!|\(|\)|,|>|<|[^\s!=(),<>]+)")


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            if text[pos:].strip() == "":
                break
            raise SelectorError(f"unable to parse requirement: {text!r}")
        out.append(m.group(1))
        pos = m.end()
        if text[pos:].strip() == "":
            break
    return out


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse the query-string form of a label selector."""
    if text is None or not text.strip():
        return LabelSelector()
    toks = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def need(cond: bool, what: str) -> None:
        if not cond:
            raise SelectorError(f"unable to parse requirement: {what} in {text!r}")

    while i < len(toks):
        if toks[i] == "!":
            need(i + 1 < len(toks), "missing key after '!'")
            key = toks[i + 1]
            _check_key(key)
            reqs.append(Requirement(key, "!"))
            i += 2
        else:
            key = toks[i]
            need(key not in ("=", "==", "!=", "(", ")", ",", ">", "<"), f"unexpected {key!r}")
            _check_key(key)
            i += 1
            if i >= len(toks) or toks[i] == ",":
                reqs.append(Requirement(key, "exists"))
            else:
                op = toks[i]
                i += 1
                if op in ("=", "==", "!="):
                    value = ""
                    if i < len(toks) and toks[i] != ",":
                        value = toks[i]
                        i += 1
                    _check_value(value)
                    reqs.append(Requirement(key, "=" if op != "!=" else "!=", (value,)))
                elif op in (">", "<"):
                    need(i < len(toks), "missing integer")
                    value = toks[i]
                    i += 1
                    try:
                        int(value)
                    except ValueError as exc:
                        raise SelectorError(
                            f"for 'Gt', 'Lt' operators, the value must be an integer: "
                            f"{value!r}") from exc
                    reqs.append(Requirement(key, "gt" if op == ">" else "lt", (value,)))
                elif op in ("in", "notin"):
                    need(i < len(toks) and toks[i] == "(", "expected '('")
                    i += 1
                    values: list[str] = []
                    while True:
                        need(i < len(toks), "expected ')'")
                        if toks[i] == ")":
                            i += 1
                            break
                        if toks[i] == ",":
                            i += 1
                            continue
                        _check_value(toks[i])
                        values.append(toks[i])
                        i += 1
                    need(bool(values), "for 'in', 'notin' operators, values set can't be empty")
                    reqs.append(Requirement(key, op, tuple(values)))
                else:
                    raise SelectorError(f"unable to parse requirement: unknown operator {op!r} "
                                        f"in {text!r}")
        if i < len(toks):
            need(toks[i] == ",", f"expected ',' but got {toks[i]!r}")
            i += 1
            need(i < len(toks), "trailing ','")
    return LabelSelector(tuple(reqs))


def _check_key(key: str) -> None:
    if not valid_label_key(key):
        raise SelectorError(f"invalid label key {key!r}")


def _check_value(value: str) -> None:
    if not valid_label_value(value):
        raise SelectorError(f"invalid label value {value!r}")


_OBJECT_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def label_selector_from_object(obj: Mapping[str, Any] | None) -> LabelSelector:
    """The ``{matchLabels, matchExpressions}`` form (Deployments, Services' ``selector`` map
    is the plain ``matchLabels`` case)."""
    if not obj:
        return LabelSelector()
    reqs: list[Requirement] = []
    for key, value in sorted((obj.get("matchLabels") or {}).items()):
        reqs.append(Requirement(key, "=", (str(value),)))
    for expr in obj.get("matchExpressions") or []:
        op = _OBJECT_OPS.get(expr.get("operator", ""))
        if op is None:
            raise SelectorError(f"{expr.get('operator')!r} is not a valid selector operator")
        reqs.append(Requirement(expr["key"], op, tuple(expr.get("values") or ())))
    return LabelSelector(tuple(reqs))


_NODE_OPS = {**_OBJECT_OPS, "Gt": "gt", "Lt": "lt"}


def node_requirement(expr: Mapping[str, Any]) -> Requirement | None:
    """A node selector requirement (``nodeAffinity`` ``matchExpressions``: ``In``, ``NotIn``,
    ``Exists``, ``DoesNotExist``, ``Gt``, ``Lt``) as a :class:`Requirement`, or None when it
    can match no node (an unknown operator, ``Gt``/``Lt`` without one integer value)."""
    op = _NODE_OPS.get(str(expr.get("operator", "")))
    values = tuple(str(v) for v in expr.get("values") or ())
    if op is None:
        return None
    if op in ("gt", "lt"):
        if len(values) != 1:
            return None
        try:
            int(values[0])
        except ValueError:
            return None
    return Requirement(str(expr.get("key", "")), op, values)


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    value: str
    negate: bool

    def matches(self, obj: Mapping[str, Any]) -> bool:
        have = field_value(obj, self.field)
        return (have != self.value) if self.negate else (have == self.value)


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(r.matches(obj) for r in self.requirements)

    def exact_name(self) -> str | None:
        for r in self.requirements:
            if r.field == "metadata.name" and not r.negate:
                return r.value
        return None


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, cur, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur.append(text[i:i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\":
            if i + 1 >= len(text) or text[i + 1] not in "\\,=":
                raise SelectorError(f"invalid escape sequence in field selector value {text!r}")
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def parse_field_selector(text: str | None,
                         supported: Sequence[str] | None = None) -> FieldSelector:
    """Parse ``f=v,f!=v``; raise SelectorError for bad syntax or an unsupported field."""
    if text is None or not text.strip():
        return FieldSelector()
    reqs: list[FieldRequirement] = []
    for part in _split_unescaped(text, ","):
        part = part.strip()
        if not part:
            raise SelectorError(f"invalid field selector: {text!r}")
        m = re.match(r"^([^=!\s]+)\s*(!=|==|=)(.*)$", part)
        if m is None:
            raise SelectorError(f"invalid selector: {part!r}; can't understand {part!r}")
        name, op, raw = m.group(1), m.group(2), m.group(3)
        if supported is not None and name not in supported:
            raise SelectorError(f'field label not supported: {name}')
        reqs.append(FieldRequirement(name, _unescape(raw), op == "!="))
    return FieldSelector(tuple(reqs))


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string a field selector compares against (missing -> ``""``; bools lowercase)."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    if path == "source" and isinstance(cur, Mapping):
        return str(cur.get("component", ""))
    if path == "status.podIPs" and isinstance(cur, list):
        return ",".join(str(p.get("ip", "")) for p in cur if isinstance(p, Mapping))
    return str(cur)
