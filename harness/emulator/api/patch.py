"""The three PATCH bodies the API server accepts, applied to plain dicts.

- :func:`json_patch`: RFC 6902 (``application/json-patch+json``).
- :func:`merge_patch`: RFC 7386 (``application/merge-patch+json``), the one definition in
  :mod:`harness.objects`.
- :func:`strategic_merge_patch`: the subset of Kubernetes' strategic merge patch that our
  built-in types need: merge patch plus list merging by the patch-merge key of the field
  (``conditions`` by ``type``, ``containers``/``env``/``volumes`` by ``name``, ...), the
  ``$patch: delete|replace|merge`` directives, ``$deleteFromPrimitiveList/<field>``, and
  ``$setElementOrder``/``$retainKeys`` accepted and dropped.

Each raises :class:`PatchError` on a body it cannot apply (the server answers 422 or 400).
"""

from __future__ import annotations

import copy
from typing import Any

from harness.objects import merge_patch

__all__ = ["PatchError", "json_patch", "merge_patch", "strategic_merge_patch"]


class PatchError(ValueError):
    """A patch that is malformed (``bad_request``) or does not apply."""

    def __init__(self, message: str, *, bad_request: bool = False) -> None:
        super().__init__(message)
        self.bad_request = bad_request


# ---------------------------------------------------------------- RFC 6902 JSON patch

def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}", bad_request=True)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (token.startswith("0") and token != "0"):
        raise PatchError(f"invalid array index {token!r}")
    idx = int(token)
    if idx > len(container) or (idx == len(container) and not allow_end):
        raise PatchError(f"array index {idx} out of range")
    return idx


def _parent(doc: Any, tokens: list[str]) -> Any:
    cur = doc
    for tok in tokens[:-1]:
        if isinstance(cur, dict):
            if tok not in cur:
                raise PatchError(f"path segment {tok!r} not found")
            cur = cur[tok]
        elif isinstance(cur, list):
            cur = cur[_index(cur, tok, allow_end=False)]
        else:
            raise PatchError(f"cannot descend into {type(cur).__name__} at {tok!r}")
    return cur


def _get(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        return doc
    parent = _parent(doc, tokens)
    tok = tokens[-1]
    if isinstance(parent, dict):
        if tok not in parent:
            raise PatchError(f"path {'/'.join(tokens)!r} not found")
        return parent[tok]
    if isinstance(parent, list):
        return parent[_index(parent, tok, allow_end=False)]
    raise PatchError(f"path {'/'.join(tokens)!r} not found")


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _parent(doc, tokens)
    tok = tokens[-1]
    if isinstance(parent, dict):
        parent[tok] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, tok, allow_end=True), value)
    else:
        raise PatchError(f"cannot add at {'/'.join(tokens)!r}")
    return doc


def _remove(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, tokens)
    tok = tokens[-1]
    if isinstance(parent, dict):
        if tok not in parent:
            raise PatchError(f"path {'/'.join(tokens)!r} not found, cannot remove")
        return parent.pop(tok)
    if isinstance(parent, list):
        return parent.pop(_index(parent, tok, allow_end=False))
    raise PatchError(f"cannot remove at {'/'.join(tokens)!r}")


def json_patch(doc: Any, ops: Any) -> Any:
    """Apply RFC 6902 operations to a deep copy of ``doc`` and return it."""
    if not isinstance(ops, list):
        raise PatchError("json patch body must be a list of operations", bad_request=True)
    out = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid json patch operation {op!r}", bad_request=True)
        kind, tokens = op["op"], _pointer(op["path"])
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {kind!r} needs a value", bad_request=True)
        if kind == "add":
            out = _add(out, tokens, copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(out, tokens)
        elif kind == "replace":
            _get(out, tokens)
            if not tokens:
                out = copy.deepcopy(op["value"])
            else:
                _remove(out, tokens)
                out = _add(out, tokens, copy.deepcopy(op["value"]))
        elif kind in ("move", "copy"):
            src = _pointer(op.get("from", ""))
            value = _get(out, src)
            if kind == "move":
                if tokens[:len(src)] == src and len(tokens) > len(src):
                    raise PatchError("cannot move a value into one of its children")
                _remove(out, src)
            out = _add(out, tokens, copy.deepcopy(value))
        elif kind == "test":
            if _get(out, tokens) != op["value"]:
                raise PatchError(f"test operation failed at {op['path']!r}")
        else:
            raise PatchError(f"unknown json patch operation {kind!r}", bad_request=True)
    return out


# ---------------------------------------------------------------- strategic merge patch

MERGE_KEYS: dict[str, str] = {
    "conditions": "type",
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "addresses": "type",
    "taints": "key",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "containerStatuses": "name",
    "initContainerStatuses": "name",
    "topologySpreadConstraints": "topologyKey",
}
"""patchMergeKey of each list field we merge (from the k8s.io/api struct tags)."""

SET_LISTS = frozenset({"finalizers"})
"""Primitive lists with ``patchStrategy: merge`` (merged as sets, order kept)."""

_DIRECTIVE = "$patch"


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        sample = next((i for i in items if isinstance(i, dict)), {})
        return "containerPort" if "containerPort" in sample else "port"
    return MERGE_KEYS.get(field)


def strategic_merge_patch(doc: Any, patch: Any) -> Any:
    """Apply a strategic merge patch (the subset described in the module docstring)."""
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch body must be a JSON object", bad_request=True)
    return _smp_map(copy.deepcopy(doc) if isinstance(doc, dict) else {}, patch)


def _smp_map(out: dict[str, Any], patch: dict[str, Any]) -> Any:
    directive = patch.get(_DIRECTIVE)
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != _DIRECTIVE}
    if directive == "delete":
        return None
    for key, value in patch.items():
        if key in (_DIRECTIVE, "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(out.get(field), list):
                out[field] = [v for v in out[field] if v not in (value or [])]
            continue
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            base = out.get(key)
            merged = _smp_map(base if isinstance(base, dict) else {}, value)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        elif isinstance(value, list):
            out[key] = _smp_list(key, out.get(key), value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _smp_list(field: str, base: Any, patch: list[Any]) -> list[Any]:
    base_list = base if isinstance(base, list) else []
    if field in SET_LISTS:
        merged = list(base_list)
        for v in patch:
            if v not in merged:
                merged.append(v)
        return merged
    if any(isinstance(p, dict) and p.get(_DIRECTIVE) == "replace" for p in patch):
        return [copy.deepcopy(p) for p in patch
                if not (isinstance(p, dict) and p.get(_DIRECTIVE) == "replace")]
    key = _merge_key(field, patch + base_list)
    if key is None or not all(isinstance(p, dict) for p in patch):
        return copy.deepcopy(patch)
    merged = [copy.deepcopy(b) for b in base_list]
    for item in patch:
        if key not in item:
            raise PatchError(f"map in list {field!r} has no merge key {key!r}")
        idx = next((i for i, b in enumerate(merged)
                    if isinstance(b, dict) and b.get(key) == item[key]), None)
        if item.get(_DIRECTIVE) == "delete":
            if idx is not None:
                merged.pop(idx)
            continue
        if idx is None:
            merged.append({k: copy.deepcopy(v) for k, v in item.items() if k != _DIRECTIVE})
        else:
            merged[idx] = _smp_map(merged[idx], item)
    return merged
