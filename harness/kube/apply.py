"""Writing objects: apply (create or replace), patch, delete, wait until gone.

Works the same for core types and custom resources (InferenceService, Revision...):
a manifest's ``apiVersion``/``kind`` is mapped to a
:class:`~harness.kube.resources.Resource` (known table, else discovery) and sent as
JSON to its REST path. Every write asks ``kube.guard`` first, so on a shared cluster
only harness namespaces (and, with the flag, ``config-autoscaler``) can change. Applied
objects get the run label (:data:`~harness.kube.safety.RUN_LABEL`) when the guard knows
the run id. Reads (:func:`get`, :func:`list_objects`) are here too.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client.exceptions import ApiException

from harness.errors import UserError
from harness.kube.client import Kube, WaitTimeout
from harness.kube.resources import Resource, from_discovery, known, known_for
from harness.kube.safety import RUN_LABEL

_discovered: dict[tuple[str, str, str], Resource] = {}


def load_manifests(source: str | Path) -> list[dict[str, Any]]:
    """Every object in a YAML file (or YAML text), ``List`` kinds flattened."""
    text = Path(source).read_text() if isinstance(source, Path) or (
        "\n" not in str(source) and Path(str(source)).exists()) else str(source)
    out: list[dict[str, Any]] = []
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        if not isinstance(doc, dict):
            raise UserError("a manifest must be a mapping", where=str(source)[:80])
        if str(doc.get("kind", "")).endswith("List") and "items" in doc:
            out.extend(doc["items"])
        else:
            out.append(doc)
    return out


def resource_for(kube: Kube, manifest: Mapping[str, Any]) -> Resource:
    """The resource of a manifest (``apiVersion`` + ``kind``), via discovery if unknown."""
    api_version = str(manifest.get("apiVersion", ""))
    kind = str(manifest.get("kind", ""))
    if not api_version or not kind:
        raise UserError("a manifest needs apiVersion and kind")
    found = known_for(api_version, kind)
    if found is not None:
        return found
    key = (kube.host, api_version, kind)
    if key not in _discovered:
        path = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
        try:
            doc = kube.request("GET", path)
        except ApiException as exc:
            if exc.status == 404:
                raise UserError(f"the cluster does not serve {api_version} (is its CRD "
                                "installed?)") from None
            raise
        res = from_discovery(api_version, kind, doc or {})
        if res is None:
            raise UserError(f"the cluster serves {api_version} but not kind {kind}")
        _discovered[key] = res
    return _discovered[key]


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _namespace(res: Resource, manifest: Mapping[str, Any], namespace: str | None) -> str | None:
    if not res.namespaced:
        return None
    ns = namespace or _meta(manifest).get("namespace")
    if not ns:
        raise UserError(f"{res.kind} {_meta(manifest).get('name')!r} needs a namespace")
    return str(ns)


def labelled(kube: Kube, manifest: Mapping[str, Any], namespace: str | None) -> dict[str, Any]:
    """A copy of ``manifest`` with the namespace set and the run label added."""
    body = copy.deepcopy(dict(manifest))
    meta = body.setdefault("metadata", {})
    if namespace:
        meta["namespace"] = namespace
    if kube.guard.run_id:
        meta.setdefault("labels", {})[RUN_LABEL] = kube.guard.run_id
    return body


def create(kube: Kube, manifest: Mapping[str, Any], *, namespace: str | None = None
           ) -> dict[str, Any]:
    """Create an object (409 AlreadyExists is raised as the client's ApiException)."""
    res = resource_for(kube, manifest)
    ns = _namespace(res, manifest, namespace)
    body = labelled(kube, manifest, ns)
    kube.guard.check_write("create", res.plural, ns, _meta(body).get("name"), body)
    return kube.request("POST", res.path(ns), body=body)  # type: ignore[no-any-return]


def apply(kube: Kube, manifest: Mapping[str, Any], *, namespace: str | None = None
          ) -> dict[str, Any]:
    """Create the object, or replace it (PUT with the current resourceVersion) if it
    exists; a 409 Conflict from a concurrent writer is retried a few times."""
    res = resource_for(kube, manifest)
    ns = _namespace(res, manifest, namespace)
    body = labelled(kube, manifest, ns)
    name = _meta(body).get("name")
    if not name:
        raise UserError(f"{res.kind} manifest has no metadata.name")
    kube.guard.check_write("apply", res.plural, ns, name, body)
    for _ in range(5):
        try:
            return kube.request("POST", res.path(ns), body=body)  # type: ignore[no-any-return]
        except ApiException as exc:
            if exc.status != 409:
                raise
        current = get(kube, res, name, ns)
        if current is None:
            continue  # deleted in between: create again
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        if "status" in current and "status" not in manifest:
            body["status"] = current["status"]
        try:
            return kube.request("PUT", res.path(ns, name), body=body)  # type: ignore[no-any-return]
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise
        body["metadata"].pop("resourceVersion", None)
    raise UserError(f"could not apply {res.kind} {ns}/{name}: it kept changing underneath")


def apply_all(kube: Kube, manifests: Iterable[Mapping[str, Any]], *,
              namespace: str | None = None) -> list[dict[str, Any]]:
    return [apply(kube, m, namespace=namespace) for m in manifests]


def patch(kube: Kube, resource: Resource | str, name: str, body: Any, *,
          namespace: str | None = None, merge: bool = True) -> dict[str, Any]:
    """Merge-patch (or JSON-patch, ``merge=False`` with a list) one object."""
    res = known(resource)
    ns = namespace if res.namespaced else None
    kube.guard.check_write("patch", res.plural, ns, name)
    ctype = "application/merge-patch+json" if merge else "application/json-patch+json"
    return kube.request("PATCH", res.path(ns, name), body=body,  # type: ignore[no-any-return]
                        content_type=ctype)


def get(kube: Kube, resource: Resource | str, name: str, namespace: str | None = None
        ) -> dict[str, Any] | None:
    """One object, or None if it does not exist."""
    res = known(resource)
    try:
        return kube.request(  # type: ignore[no-any-return]
            "GET", res.path(namespace if res.namespaced else None, name))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def list_objects(kube: Kube, resource: Resource | str, namespace: str | None = None, *,
                 label_selector: str | None = None, field_selector: str | None = None
                 ) -> list[dict[str, Any]]:
    """Every object of a resource (in a namespace, or cluster-wide when None), with
    ``kind``/``apiVersion`` filled in (list items lack them)."""
    res = known(resource)
    doc = kube.request("GET", res.path(namespace if res.namespaced else None),
                       query={"labelSelector": label_selector,
                              "fieldSelector": field_selector})
    items = list((doc or {}).get("items") or [])
    for item in items:
        item.setdefault("kind", res.kind)
        item.setdefault("apiVersion", res.api_version)
    return items


def delete(kube: Kube, resource: Resource | str | Mapping[str, Any], name: str | None = None,
           *, namespace: str | None = None, wait: bool = False, timeout: float = 120.0,
           propagation: str = "Background") -> bool:
    """Delete one object (by resource and name, or by manifest); True if it existed.
    ``wait`` blocks until it is gone (see :func:`wait_gone`)."""
    if isinstance(resource, Mapping):
        res = resource_for(kube, resource)
        name = name or _meta(resource).get("name")
        namespace = _namespace(res, resource, namespace)
    else:
        res = known(resource)
    if not name:
        raise UserError(f"delete {res.plural}: no name given")
    ns = namespace if res.namespaced else None
    kube.guard.check_write("delete", res.plural, ns, name)
    try:
        kube.request("DELETE", res.path(ns, name),
                     body={"kind": "DeleteOptions", "apiVersion": "v1",
                           "propagationPolicy": propagation})
        existed = True
    except ApiException as exc:
        if exc.status != 404:
            raise
        existed = False
    if wait:
        wait_gone(kube, res, name, ns, timeout=timeout)
    return existed


def wait_gone(kube: Kube, resource: Resource | str, name: str, namespace: str | None = None,
              *, timeout: float = 120.0, interval: float = 0.2) -> None:
    """Block until the object no longer exists; TimeoutError naming what is left."""
    res = known(resource)
    deadline = time.monotonic() + timeout
    last: dict[str, Any] | None = None
    while True:
        last = get(kube, res, name, namespace)
        if last is None:
            return
        if time.monotonic() >= deadline:
            meta = last.get("metadata") or {}
            raise WaitTimeout(
                f"{res.kind} {namespace + '/' if namespace else ''}{name} still exists after "
                f"{timeout:g} s (deletionTimestamp {meta.get('deletionTimestamp')}, "
                f"finalizers {meta.get('finalizers') or []})")
        time.sleep(interval)
        interval = min(1.0, interval * 1.5)
