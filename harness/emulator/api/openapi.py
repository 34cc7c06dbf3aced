"""The OpenAPI documents kubectl reads: ``/openapi/v3`` (an index of group-versions),
``/openapi/v3/api/v1``, ``/openapi/v3/apis/{group}/{version}`` and ``/openapi/v2``.

Schemas come from what the project already ships: the built-in kinds from
``kubernetes-validate``'s definitions for Kubernetes 1.34 (the OpenAPI definitions of
kube-apiserver, turned back from JSON-Schema ``["string", "null"]`` types into OpenAPI
ones); the InferenceService from ``fixtures/schemas/inferenceservice.schema.json`` (where
that file closes an object with ``additionalProperties: false`` the published schema
lists its fields, elsewhere it keeps unknown fields, as a CRD's
``x-kubernetes-preserve-unknown-fields``); other custom resources keep unknown fields.

Every resource gets the paths kubectl looks at: a PATCH and a POST operation tagged with
``x-kubernetes-group-version-kind`` and the ``dryRun``, ``fieldManager``,
``fieldValidation`` (and ``force``) query parameters, so kubectl 1.27+ sees that the
server validates fields itself (``--validate=strict`` sends ``fieldValidation=Strict``,
see :mod:`.fieldvalidation`). Documents are built on first use and cached per registry
size; the index's ``?hash=`` is the SHA-512 of each document, as on a real server.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import kubernetes_validate

from harness.emulator.api.registry import Registry, ResourceType
from harness.files import data_path

KUBERNETES_SCHEMAS = "1.34"
ISVC_SCHEMA = data_path("fixtures", "schemas", "inferenceservice.schema.json")
META = "io.k8s.apimachinery.pkg.apis.meta.v1"
_GVK = "x-kubernetes-group-version-kind"

Schema = dict[str, Any]


# ---------------------------------------------------------------------------- sources


@functools.cache
def builtin_definitions() -> dict[str, Schema]:
    """kube-apiserver's definitions (``io.k8s.api.core.v1.Pod`` -> schema), OpenAPI form."""
    base = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    dirs = sorted(base.glob(f"v{KUBERNETES_SCHEMAS}.*-local"))
    if not dirs:
        raise FileNotFoundError(f"kubernetes-validate has no schemas for Kubernetes "
                                f"{KUBERNETES_SCHEMAS} under {base}")
    raw = json.loads((dirs[-1] / "_definitions.json").read_text())["$defs"]
    return {name: _openapi_schema(schema, top=True) for name, schema in raw.items()}


def _openapi_schema(schema: Any, *, top: bool = False) -> Any:
    """JSON-Schema draft-07 (kubernetes-validate's form) -> OpenAPI v3 schema."""
    if isinstance(schema, list):
        return [_openapi_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: Schema = {}
    for key, value in schema.items():
        if key == "$ref" and isinstance(value, str):
            out[key] = value.replace("#/$defs/", "#/components/schemas/")
        elif key == "type" and isinstance(value, list):
            kinds = [v for v in value if v != "null"]
            out[key] = kinds[0] if kinds else "object"
        elif key == "oneOf" and all(isinstance(s, dict) and set(s) == {"type"} for s in value):
            continue  # IntOrString / Quantity: typed below
        elif key == "properties" and isinstance(value, dict):
            out[key] = {k: _openapi_schema(v) for k, v in value.items()}
        else:
            out[key] = _openapi_schema(value)
    if "oneOf" in schema and "type" not in out and "oneOf" not in out:
        out["type"] = "string"
        kinds = {t for s in schema["oneOf"] for t in (s["type"] if isinstance(s["type"], list)
                                                      else [s["type"]])}
        if "integer" in kinds:
            out["format"] = "int-or-string"
            out["x-kubernetes-int-or-string"] = True
    if top and _GVK in out:
        for field in ("apiVersion", "kind"):
            prop = (out.get("properties") or {}).get(field)
            if isinstance(prop, dict):
                prop.pop("enum", None)
    return out


@functools.cache
def _builtin_by_gvk() -> dict[tuple[str, str, str], str]:
    out: dict[tuple[str, str, str], str] = {}
    for name, schema in builtin_definitions().items():
        for gvk in schema.get(_GVK) or []:
            out.setdefault((gvk.get("group", ""), gvk["version"], gvk["kind"]), name)
    return out


def _crd_structural(schema: Any) -> Any:
    """The fixture's JSON Schema -> a structural CRD schema (closed objects list their
    fields; open ones keep unknown fields)."""
    if not isinstance(schema, dict):
        return schema
    out: Schema = {}
    for key, value in schema.items():
        if key in ("$schema", "$id", "title", "const", "additionalProperties"):
            continue
        if key == "properties":
            out[key] = {k: _crd_structural(v) for k, v in value.items()}
        elif key == "items":
            out[key] = _crd_structural(value)
        elif key in ("oneOf", "anyOf"):
            types = [s.get("type") for s in value if isinstance(s, dict)]
            if "string" in types and "integer" in types:
                out["x-kubernetes-int-or-string"] = True
            continue
        elif key == "type" and isinstance(value, list):
            out[key] = next((v for v in value if v != "null"), "object")
        else:
            out[key] = value
    if "const" in schema and "type" not in out:
        out["type"] = "string"
    if out.get("type") == "object" or "properties" in out:
        out.setdefault("type", "object")
        closed = schema.get("additionalProperties") is False
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            out["additionalProperties"] = _crd_structural(extra)
        elif not closed and "properties" in out:
            out["x-kubernetes-preserve-unknown-fields"] = True
    return out


@functools.cache
def isvc_schema() -> Schema:
    raw = json.loads(ISVC_SCHEMA.read_text())
    schema = _crd_structural(raw)
    schema.pop("required", None)
    schema["description"] = ("InferenceService is the Schema for the InferenceServices API")
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {"type": "string", "description": _API_VERSION_DOC}
    props["kind"] = {"type": "string", "description": _KIND_DOC}
    props["metadata"] = {"type": "object"}
    props.setdefault("status", {"type": "object",
                                "x-kubernetes-preserve-unknown-fields": True})
    return schema


_API_VERSION_DOC = ("APIVersion defines the versioned schema of this representation of an "
                    "object. Servers should convert recognized schemas to the latest internal "
                    "value, and may reject unrecognized values.")
_KIND_DOC = ("Kind is a string value representing the REST resource this object represents. "
             "Servers may infer this from the endpoint the client submits requests to.")


def crd_schema(rtype: ResourceType) -> Schema:
    """The ``openAPIV3Schema`` a custom resource's CRD carries."""
    if (rtype.group, rtype.kind) == ("serving.kserve.io", "InferenceService"):
        return copy.deepcopy(isvc_schema())
    return {"type": "object", "description": f"{rtype.kind} ({rtype.api_version})",
            "properties": {
                "apiVersion": {"type": "string", "description": _API_VERSION_DOC},
                "kind": {"type": "string", "description": _KIND_DOC},
                "metadata": {"type": "object"},
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}


def schema_name(rtype: ResourceType) -> str:
    """The components key of a kind: ``io.k8s.api.apps.v1.Deployment`` or, for a custom
    resource, the reversed group as the API server names it (``io.kserve.serving.v1beta1
    .InferenceService``)."""
    if rtype.builtin:
        found = _builtin_by_gvk().get((rtype.group, rtype.version, rtype.kind))
        if found:
            return found
    rev = ".".join(reversed(rtype.group.split("."))) if rtype.group else "core"
    return f"{rev}.{rtype.version}.{rtype.kind}"


def kind_schema(rtype: ResourceType) -> Schema:
    """The published schema of a kind (with its GVK extension), refs into components."""
    gvk = {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}
    if rtype.builtin:
        name = _builtin_by_gvk().get((rtype.group, rtype.version, rtype.kind))
        if name is not None:
            return builtin_definitions()[name]
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True, _GVK: [gvk]}
    schema = crd_schema(rtype)
    schema["properties"]["metadata"] = {
        "allOf": [{"$ref": f"#/components/schemas/{META}.ObjectMeta"}],
        "description": "Standard object's metadata."}
    schema[_GVK] = [gvk]
    return schema


# ---------------------------------------------------------------------------- documents


def _refs(schema: Any, out: set[str]) -> None:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            out.add(ref.rsplit("/", 1)[1])
        for value in schema.values():
            _refs(value, out)
    elif isinstance(schema, list):
        for value in schema:
            _refs(value, out)


def _closure(schemas: dict[str, Schema]) -> dict[str, Schema]:
    defs = builtin_definitions()
    todo = set()
    for s in schemas.values():
        _refs(s, todo)
    out = dict(schemas)
    while todo:
        name = todo.pop()
        if name in out or name not in defs:
            continue
        out[name] = defs[name]
        _refs(defs[name], todo)
    return out


def _params(*names: str) -> list[dict[str, Any]]:
    docs = {
        "dryRun": "When present, indicates that modifications should not be persisted.",
        "fieldManager": "fieldManager is a name associated with the actor or entity that is "
                        "making these changes.",
        "fieldValidation": "fieldValidation instructs the server on how to handle objects in "
                           "the request containing unknown or duplicate fields. Valid values "
                           "are: Ignore, Warn, Strict.",
        "force": "Force is going to \"force\" Apply requests.",
        "pretty": "If 'true', then the output is pretty printed.",
    }
    return [{"name": n, "in": "query", "description": docs[n], "schema": {
        "type": "boolean" if n == "force" else "string", "uniqueItems": True}}
        for n in names]


def _base(rtype: ResourceType) -> str:
    return f"/api/{rtype.version}" if not rtype.group else (
        f"/apis/{rtype.group}/{rtype.version}")


def _patch_types(rtype: ResourceType) -> tuple[str, ...]:
    """A custom resource takes no strategic merge patch; kubectl reads this list to
    choose the patch it sends (``gvkSupportsPatchOpenAPIV3``)."""
    smp = ("application/strategic-merge-patch+json",) if rtype.builtin else ()
    return ("application/json-patch+json", "application/merge-patch+json", *smp,
            "application/apply-patch+yaml")


def _paths(rtype: ResourceType, ref: str) -> dict[str, Any]:
    gvk = {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}
    ns = "/namespaces/{namespace}" if rtype.namespaced else ""
    coll = f"{_base(rtype)}{ns}/{rtype.plural}"
    item = coll + "/{name}"
    ok = {"200": {"description": "OK", "content": {"application/json": {"schema": {
        "$ref": ref}}}}}
    body = {"content": {"*/*": {"schema": {"$ref": ref}}}}

    def op(action: str, verb: str, params: list[dict[str, Any]],
           **extra: Any) -> dict[str, Any]:
        return {"description": f"{verb} the specified {rtype.kind}",
                "operationId": f"{verb}{rtype.kind}", "parameters": params,
                "responses": ok, "x-kubernetes-action": action,
                _GVK: gvk, **extra}

    path_params = [{"name": "name", "in": "path", "required": True,
                    "schema": {"type": "string", "uniqueItems": True}}]
    if rtype.namespaced:
        path_params.append({"name": "namespace", "in": "path", "required": True,
                            "schema": {"type": "string", "uniqueItems": True}})
    return {
        coll: {"get": op("list", "list", _params("pretty")),
               "post": op("post", "create",
                          _params("dryRun", "fieldManager", "fieldValidation"),
                          requestBody=body),
               "parameters": path_params[1:] + _params("pretty")},
        item: {"get": op("get", "read", []),
               "put": op("put", "replace", _params("dryRun", "fieldManager",
                                                   "fieldValidation"), requestBody=body),
               "patch": op("patch", "patch", _params("dryRun", "fieldManager",
                                                     "fieldValidation", "force"),
                           requestBody={"content": {t: {"schema": {
                               "$ref": f"#/components/schemas/{META}.Patch"}}
                               for t in _patch_types(rtype)}}),
               "delete": op("delete", "delete", _params("dryRun")),
               "parameters": path_params + _params("pretty")},
    }


class OpenAPI:
    """Builds and caches the documents for one registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._size = -1
        self._v3: dict[str, bytes] = {}
        self._hashes: dict[str, str] = {}
        self._v2: bytes | None = None

    def _refresh(self) -> None:
        if self._size != len(self.registry.types):
            self._size = len(self.registry.types)
            self._v3, self._hashes, self._v2 = {}, {}, None

    def group_versions(self) -> list[str]:
        """``api/v1``, ``apis/apps/v1``, ... (the keys of the v3 index)."""
        seen: list[str] = []
        for t in self.registry.types:
            key = _base(t).lstrip("/")
            if key not in seen:
                seen.append(key)
        return seen

    def v3(self, gv_path: str) -> bytes | None:
        """The v3 document of ``api/v1`` or ``apis/{group}/{version}`` (None if unknown)."""
        self._refresh()
        if gv_path not in self._v3:
            types = [t for t in self.registry.types if _base(t).lstrip("/") == gv_path]
            if not types:
                return None
            schemas: dict[str, Schema] = {}
            paths: dict[str, Any] = {}
            for t in types:
                name = schema_name(t)
                schemas[name] = kind_schema(t)
                paths.update(_paths(t, f"#/components/schemas/{name}"))
            doc = {"openapi": "3.0.0",
                   "info": {"title": "Kubernetes", "version": "v1.34.0-harness-emulator"},
                   "paths": paths, "components": {"schemas": _closure(schemas)}}
            raw = json.dumps(doc, separators=(",", ":")).encode()
            self._v3[gv_path] = raw
            self._hashes[gv_path] = hashlib.sha512(raw).hexdigest().upper()
        return self._v3[gv_path]

    def v3_index(self) -> dict[str, Any]:
        paths = {}
        for gv in self.group_versions():
            self.v3(gv)
            paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={self._hashes[gv]}"}
        return {"paths": paths}

    def v2(self) -> bytes:
        """Swagger 2.0: every kind's definition (refs ``#/definitions/``) and paths."""
        self._refresh()
        if self._v2 is None:
            definitions: dict[str, Schema] = {}
            paths: dict[str, Any] = {}
            for t in self.registry.types:
                name = schema_name(t)
                definitions[name] = kind_schema(t)
                for path, item in _paths(t, f"#/definitions/{name}").items():
                    paths[path] = item
            raw = json.dumps({"swagger": "2.0",
                              "info": {"title": "Kubernetes",
                                       "version": "v1.34.0-harness-emulator"},
                              "paths": _v2_paths(paths),
                              "definitions": _closure(definitions)}, separators=(",", ":"))
            self._v2 = raw.replace("#/components/schemas/", "#/definitions/").encode()
        return self._v2


def _v2_paths(paths: dict[str, Any]) -> dict[str, Any]:
    """v3 operations -> Swagger 2.0 ones (parameters typed inline, body as a parameter)."""
    out: dict[str, Any] = {}
    for path, item in paths.items():
        new: dict[str, Any] = {}
        for verb, op in item.items():
            if verb == "parameters":
                new[verb] = [_v2_param(p) for p in op]
                continue
            op2 = {k: v for k, v in op.items() if k not in ("requestBody", "responses",
                                                            "parameters")}
            op2["parameters"] = [_v2_param(p) for p in op["parameters"]]
            if "requestBody" in op:
                schema = next(iter(op["requestBody"]["content"].values()))["schema"]
                op2["parameters"].append({"name": "body", "in": "body", "required": True,
                                          "schema": schema})
            schema = op["responses"]["200"]["content"]["application/json"]["schema"]
            op2["responses"] = {"200": {"description": "OK", "schema": schema}}
            new[verb] = op2
        out[path] = new
    return out


def _v2_param(p: dict[str, Any]) -> dict[str, Any]:
    q = {k: v for k, v in p.items() if k != "schema"}
    q.update(p.get("schema") or {})
    return q
