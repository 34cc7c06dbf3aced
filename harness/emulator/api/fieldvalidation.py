"""Server-side field validation: the ``fieldValidation`` query parameter of create, update
and patch (``Strict`` -> 400, ``Warn`` -> a ``Warning`` header, ``Ignore``).

Unknown fields are found against the kind's published OpenAPI schema
(:func:`harness.emulator.openapi.kind_schema`): an object schema with ``properties``
knows only those (unless it keeps unknown fields, ``x-kubernetes-preserve-unknown-fields``),
``additionalProperties`` is a map, ``items`` a list. The words are kube-apiserver's:
``strict decoding error: unknown field "spec.predictor.minReplica"``, reported as
``InferenceService in version "v1beta1" cannot be handled as a InferenceService: ...``.
Only requests that name the parameter are checked, so the controllers' writes cost nothing.
"""

from __future__ import annotations

import json
from typing import Any

from harness.emulator.api.openapi import builtin_definitions, kind_schema
from harness.emulator.api.registry import ResourceType
from harness.emulator.api.status import ApiError, bad_request

MODES = ("Ignore", "Warn", "Strict")
_REF = "#/components/schemas/"


def _resolve(schema: Any) -> dict[str, Any]:
    while isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            schema = builtin_definitions().get(ref[len(_REF):], {})
            continue
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and "properties" not in schema:
            schema = all_of[0]
            continue
        return schema
    return {}


def unknown_fields(schema: Any, value: Any, path: str = "", *,
                   keyed: bool = False) -> list[str]:
    """Paths (``spec.containers[0].imagePullPolicyy``) of fields the schema does not know;
    ``keyed``: server-side apply's spelling (``.spec.containers[name="c"].x``)."""
    s = _resolve(schema)
    out: list[str] = []
    if isinstance(value, dict):
        props = s.get("properties")
        extra = s.get("additionalProperties")
        keep = bool(s.get("x-kubernetes-preserve-unknown-fields"))
        for key, sub in value.items():
            if key.startswith("$"):  # strategic-merge-patch directives
                continue
            where = f"{path}.{key}" if path or keyed else key
            if isinstance(props, dict) and key in props:
                out.extend(unknown_fields(props[key], sub, where, keyed=keyed))
            elif isinstance(extra, dict):
                out.extend(unknown_fields(extra, sub, where, keyed=keyed))
            elif isinstance(props, dict) and not keep and extra is not True:
                out.append(where)
    elif isinstance(value, list) and isinstance(s.get("items"), dict):
        keys = s.get("x-kubernetes-list-map-keys") if keyed else None
        for i, item in enumerate(value):
            index = str(i)
            if keys and isinstance(item, dict):
                index = ",".join(f"{k}={json.dumps(item.get(k))}" for k in keys)
            out.extend(unknown_fields(s["items"], item, f"{path}[{index}]", keyed=keyed))
    return out


def check_apply(rtype: ResourceType, body: Any, namespace: str | None, name: str) -> None:
    """Server-side apply refuses fields outside the schema whatever ``fieldValidation``
    says, with structured-merge-diff's words and, as kube-apiserver does, code 500
    (kubernetes/kubernetes#122480)."""
    if not isinstance(body, dict):
        return
    found = unknown_fields(kind_schema(rtype), body, keyed=True)
    if not found:
        return
    errors = [f"{p}: field not declared in schema" for p in found]
    text = errors[0] if len(errors) == 1 else "errors:\n  " + "\n  ".join(errors)
    gv = f"{rtype.group}/{rtype.version}"
    raise ApiError(500, "", f"failed to create typed patch object ({namespace or ''}/{name}; "
                            f"{gv}, Kind={rtype.kind}): {text}")


def valid_mode(mode: str | None) -> str | None:
    """The ``fieldValidation`` value (None when not given); 400 for an unknown one."""
    if mode is None or mode == "":
        return None
    if mode not in MODES:
        raise bad_request(f"fieldValidation: Unsupported value: \"{mode}\": supported "
                          "values: \"Ignore\", \"Strict\", \"Warn\"")
    return mode


def check(rtype: ResourceType, body: Any, mode: str | None) -> list[str]:
    """Apply ``fieldValidation=mode`` to a request body; returns the warnings to send
    (``Warn``), raises 400 (``Strict``), or returns [] (``Ignore`` / not asked)."""
    if not valid_mode(mode) or mode == "Ignore" or not isinstance(body, dict):
        return []
    found = unknown_fields(kind_schema(rtype), body)
    if not found:
        return []
    words = [f'unknown field "{p}"' for p in found]
    if mode == "Warn":
        return words
    raise ApiError(400, "BadRequest",
                   f'{rtype.kind} in version "{rtype.version}" cannot be handled as a '
                   f"{rtype.kind}: strict decoding error: {', '.join(words)}")


def warning_header(words: list[str]) -> dict[str, str]:
    """The ``Warning`` header(s) of RFC 7234 as kube-apiserver sends them (code 299)."""
    if not words:
        return {}
    return {"Warning": ", ".join('299 - "{}"'.format(w.replace('"', '\\"')) for w in words)}
