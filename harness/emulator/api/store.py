"""The in-memory object store behind the emulated API server: CRUD, list, watch.

Controllers call it directly, in-process; the HTTP layer (``apiserver.py``) is a thin
skin over the same methods, so both see the same objects and the same watch events.

- One global, monotonic ``resourceVersion`` (like etcd's revision); every write bumps it.
- A bounded history of changes lets a watch resume from a resourceVersion; a resume point
  older than the history raises/streams 410 Expired (:meth:`Store.compact` forces that).
- Deletion honours finalizers, ``propagationPolicy`` (garbage collection through
  ``ownerReferences``), namespace termination, and, with ``graceful_pods=True``, pod grace
  periods (a kubelet controller then finishes the delete with grace 0).
- All methods are thread-safe (one re-entrant lock) and never block; objects handed out are
  private deep copies.

Resources are named by storage key (``"pods"``, ``"apps/deployments"``,
``"serving.kserve.io/inferenceservices"``) or by :class:`ResourceType`.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from harness.emulator.api import patch as patches
from harness.emulator.api.defaults import apply_defaults, check_body, normalize, validate_metadata
from harness.emulator.api.registry import Registry, ResourceType, crd_object
from harness.emulator.api.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    label_selector_from_object,
    parse_field_selector,
    parse_label_selector,
)
from harness.emulator.api.status import (
    ApiError,
    already_exists,
    bad_request,
    conflict,
    expired,
    forbidden,
    invalid,
    not_found,
    unsupported_media_type,
)
from harness.emulator.api.subscriptions import Watch, WatchEvent
from harness.objects import format_time

PATCH_JSON = "application/json-patch+json"
PATCH_MERGE = "application/merge-patch+json"
PATCH_STRATEGIC = "application/strategic-merge-patch+json"
PATCH_APPLY = "application/apply-patch+yaml"
PATCH_TYPES = {"json": PATCH_JSON, "merge": PATCH_MERGE, "strategic": PATCH_STRATEGIC,
               PATCH_JSON: PATCH_JSON, PATCH_MERGE: PATCH_MERGE,
               PATCH_STRATEGIC: PATCH_STRATEGIC}

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"

Key = tuple[str, str]  # (namespace or "", name)


@dataclass(frozen=True)
class Change:
    """One entry of the history: the new object (last state for DELETED) and the old."""

    rv: int
    key: str
    type: str
    object: dict[str, Any]
    old: dict[str, Any] | None


def _parse_rv(value: str | int | None, what: str = "resourceVersion") -> int | None:
    if value is None or value == "":
        return None
    try:
        rv = int(value)
    except (TypeError, ValueError) as exc:
        raise bad_request(f"invalid {what}: {value!r}") from exc
    if rv < 0:
        raise bad_request(f"invalid {what}: {value!r}")
    return rv


class Store:
    """Objects of every served resource, the global resourceVersion, history and watches."""

    def __init__(self, registry: Registry | None = None, *, history: int = 10_000,
                 clock: Callable[[], float] = time.time, seed: int | None = None,
                 graceful_pods: bool = False, max_watch_queue: int = 200_000,
                 register_crds: bool = True) -> None:
        self.registry = registry or Registry()
        self.clock = clock
        self.graceful_pods = graceful_pods
        self.max_watch_queue = max_watch_queue
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._rv = 0
        self._objects: dict[str, dict[Key, dict[str, Any]]] = {
            t.key: {} for t in self.registry.types}
        self._history: deque[Change] = deque(maxlen=max(1, history))
        self._compacted = 0  # resumes from an rv below this get 410
        self._watches: dict[str, set[Watch]] = {}
        self._owners: dict[str, set[tuple[str, Key]]] = {}
        self._removed_namespaces: dict[str, dict[str, Any]] = {}
        # validating admission (webhooks): each is called with the type and the object
        # about to be stored (create, or update of the main resource) and raises ApiError
        self.admission: list[Callable[[ResourceType, dict[str, Any]], None]] = []
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.create("namespaces", {"metadata": {"name": ns}})
        if register_crds:
            for t in self.registry.types:
                if not t.builtin:
                    self.create("apiextensions.k8s.io/customresourcedefinitions", crd_object(t))

    # ------------------------------------------------------------------ basics

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    def resource(self, ref: str | ResourceType) -> ResourceType:
        try:
            return self.registry.get(ref)
        except KeyError as exc:
            raise ApiError(404, "NotFound", f"the server could not find the requested "
                                            f"resource ({ref})") from exc

    def _key(self, rtype: ResourceType, name: str, namespace: str | None) -> Key:
        if rtype.namespaced:
            if not namespace:
                raise bad_request(f"a namespace is required for {rtype.plural}")
            return (namespace, name)
        return ("", name)

    def _now(self) -> str:
        return format_time(self.clock())

    def _record(self, rtype: ResourceType, etype: str, obj: dict[str, Any],
                old: dict[str, Any] | None) -> None:
        """Append a change to the history and offer it to watchers (lock held)."""
        if len(self._history) == self._history.maxlen:
            self._compacted = self._history[0].rv
        change = Change(self._rv, rtype.key, etype, obj, old)
        self._history.append(change)
        for w in list(self._watches.get(rtype.key, ())):
            w.offer(etype, obj, old)

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _index_owners(self, rtype: ResourceType, key: Key, old: dict[str, Any] | None,
                      new: dict[str, Any] | None) -> None:
        for obj, add in ((old, False), (new, True)):
            if obj is None:
                continue
            for ref in obj.get("metadata", {}).get("ownerReferences") or []:
                uid = ref.get("uid")
                if not uid:
                    continue
                entries = self._owners.setdefault(uid, set())
                if add:
                    entries.add((rtype.key, key))
                else:
                    entries.discard((rtype.key, key))
                    if not entries:
                        del self._owners[uid]

    def _put(self, rtype: ResourceType, key: Key, obj: dict[str, Any], etype: str) -> None:
        bucket = self._objects[rtype.key]
        old = bucket.get(key)
        obj["metadata"]["resourceVersion"] = self._next_rv()
        bucket[key] = obj
        self._index_owners(rtype, key, old, obj)
        self._record(rtype, etype, obj, old)

    def _remove(self, rtype: ResourceType, key: Key, last: dict[str, Any]) -> None:
        bucket = self._objects[rtype.key]
        old = bucket.pop(key)
        last["metadata"]["resourceVersion"] = self._next_rv()
        self._index_owners(rtype, key, old, None)
        self._record(rtype, "DELETED", last, old)

    # ------------------------------------------------------------------ create

    def create(self, resource: str | ResourceType, obj: dict[str, Any], *,
               namespace: str | None = None, dry_run: bool = False) -> dict[str, Any]:
        """Create ``obj`` (``metadata.generateName`` honoured); 409 AlreadyExists on a clash.
        ``dry_run`` (``?dryRun=All``) checks and answers without storing."""
        rtype = self.resource(resource)
        obj = copy.deepcopy(check_body(obj))
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        self._check_kind(rtype, obj)
        with self._lock:
            if rtype.namespaced:
                body_ns = meta.get("namespace")
                if namespace and body_ns and body_ns != namespace:
                    raise bad_request("the namespace of the provided object does not match "
                                      "the namespace sent on the request")
                namespace = namespace or body_ns or "default"
                meta["namespace"] = namespace
                self._check_namespace_open(namespace)
            else:
                meta.pop("namespace", None)
            if not meta.get("name"):
                prefix = meta.get("generateName")
                if not prefix:
                    raise invalid(rtype.kind, "", "metadata.name: Required value: name or "
                                  "generateName is required", rtype.group)
                for _ in range(20):
                    name = prefix + "".join(self._rng.choice(_NAME_CHARS) for _ in range(5))
                    if self._key(rtype, name, namespace) not in self._objects[rtype.key]:
                        break
                meta["name"] = name
            validate_metadata(rtype, obj)
            key = self._key(rtype, meta["name"], namespace)
            if key in self._objects[rtype.key]:
                raise already_exists(rtype.group, rtype.plural, meta["name"])
            for field in ("resourceVersion", "deletionTimestamp",
                          "deletionGracePeriodSeconds"):
                meta.pop(field, None)
            meta["uid"] = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
            meta["creationTimestamp"] = self._now()
            meta["generation"] = 1
            obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
            apply_defaults(rtype, obj)
            normalize(obj)
            self._admit(rtype, obj)
            if dry_run:
                return obj
            self._put(rtype, key, obj, "ADDED")
            return copy.deepcopy(obj)

    def _admit(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        for hook in self.admission:
            hook(rtype, obj)

    def _check_kind(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if kind and kind != rtype.kind:
            raise bad_request(f"the kind {kind!r} of the body does not match the resource "
                              f"{rtype.plural!r} (kind {rtype.kind!r})")
        if api_version and api_version != rtype.api_version:
            raise bad_request(f"the apiVersion {api_version!r} of the body does not match "
                              f"{rtype.api_version!r}")

    def _check_namespace_open(self, namespace: str) -> None:
        ns = self._objects["namespaces"].get(("", namespace))
        if ns is None:
            raise not_found("", "namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise forbidden(f"unable to create new content in namespace {namespace} because "
                            "it is being terminated")

    # ------------------------------------------------------------------ read

    def get(self, resource: str | ResourceType, name: str, *,
            namespace: str | None = None) -> dict[str, Any]:
        """One object (a private copy); 404 NotFound when absent."""
        rtype = self.resource(resource)
        with self._lock:
            obj = self._objects[rtype.key].get(self._key(rtype, name, namespace))
            if obj is None:
                raise not_found(rtype.group, rtype.plural, name)
            return copy.deepcopy(obj)

    def try_get(self, resource: str | ResourceType, name: str, *,
                namespace: str | None = None) -> dict[str, Any] | None:
        try:
            return self.get(resource, name, namespace=namespace)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def list(self, resource: str | ResourceType, *, namespace: str | None = None,
             label_selector: str | LabelSelector | None = None,
             field_selector: str | FieldSelector | None = None,
             limit: int | None = None, continue_token: str | None = None,
             copy_items: bool = True) -> dict[str, Any]:
        """A ``<Kind>List`` with ``metadata.resourceVersion``; paged when ``limit`` is set."""
        rtype = self.resource(resource)
        labels, fields = self._selectors(rtype, label_selector, field_selector)
        start: Key | None = None
        if continue_token:
            try:
                token = json.loads(base64.urlsafe_b64decode(continue_token.encode()))
                start = (token["start"][0], token["start"][1])
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                raise bad_request(f"invalid continue token {continue_token!r}") from exc
        with self._lock:
            bucket = self._objects[rtype.key]
            keys = sorted(bucket)
            items: list[dict[str, Any]] = []
            more = 0
            last: Key | None = None
            for key in keys:
                if namespace is not None and rtype.namespaced and key[0] != namespace:
                    continue
                if start is not None and key <= start:
                    continue
                obj = bucket[key]
                if not (labels.matches(obj["metadata"].get("labels"))
                        and fields.matches(obj)):
                    continue
                if limit and len(items) >= limit:
                    more += 1
                    continue
                items.append(copy.deepcopy(obj) if copy_items else obj)
                last = key
            meta: dict[str, Any] = {"resourceVersion": str(self._rv)}
            if more and last is not None:
                meta["continue"] = base64.urlsafe_b64encode(
                    json.dumps({"start": list(last)}).encode()).decode()
                meta["remainingItemCount"] = more
            return {"apiVersion": rtype.api_version, "kind": f"{rtype.kind}List",
                    "metadata": meta, "items": items}

    def _selectors(self, rtype: ResourceType, label_selector: str | LabelSelector | None,
                   field_selector: str | FieldSelector | None,
                   ) -> tuple[LabelSelector, FieldSelector]:
        try:
            labels = (label_selector if isinstance(label_selector, LabelSelector)
                      else parse_label_selector(label_selector))
            fields = (field_selector if isinstance(field_selector, FieldSelector)
                      else parse_field_selector(field_selector, rtype.selectable_fields))
        except SelectorError as exc:
            raise bad_request(str(exc)) from exc
        return labels, fields

    # ------------------------------------------------------------------ update / patch

    def update(self, resource: str | ResourceType, obj: dict[str, Any], *,
               namespace: str | None = None, subresource: str | None = None,
               dry_run: bool = False) -> dict[str, Any]:
        """Replace an object (PUT). A set ``metadata.resourceVersion`` that is not the
        current one gives 409 Conflict. ``subresource="status"`` writes only the status;
        a main-resource update keeps the stored status when the type has a status
        subresource."""
        rtype = self.resource(resource)
        obj = copy.deepcopy(check_body(obj))
        self._check_kind(rtype, obj)
        meta = obj.get("metadata")
        if not isinstance(meta, dict) or not meta.get("name"):
            raise invalid(rtype.kind, "", "metadata.name: Required value", rtype.group)
        if rtype.namespaced:
            namespace = namespace or meta.get("namespace") or "default"
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise bad_request("the namespace of the provided object does not match the "
                                  "namespace sent on the request")
        with self._lock:
            key = self._key(rtype, meta["name"], namespace)
            current = self._objects[rtype.key].get(key)
            if current is None:
                raise not_found(rtype.group, rtype.plural, meta["name"])
            want_rv = meta.get("resourceVersion")
            if want_rv not in (None, "") and str(want_rv) != current["metadata"][
                    "resourceVersion"]:
                raise conflict(rtype.group, rtype.plural, meta["name"])
            return copy.deepcopy(self._write(rtype, key, current, obj, subresource,
                                             dry_run=dry_run))

    def _write(self, rtype: ResourceType, key: Key, current: dict[str, Any],
               obj: dict[str, Any], subresource: str | None, *,
               dry_run: bool = False) -> dict[str, Any]:
        """Merge server-owned fields, bump generation, store, maybe finish a deletion."""
        if subresource == "status":
            new = copy.deepcopy(current)
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
        else:
            new = obj
            if rtype.status and subresource is None:
                if "status" in current:
                    new["status"] = copy.deepcopy(current["status"])
                else:
                    new.pop("status", None)
        meta = new.setdefault("metadata", {})
        cur_meta = current["metadata"]
        for field in ("uid", "creationTimestamp", "name", "namespace", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "generation"):
            if field in cur_meta:
                meta[field] = cur_meta[field]
            else:
                meta.pop(field, None)
        if cur_meta.get("deletionTimestamp") and len(meta.get("finalizers") or []) > len(
                cur_meta.get("finalizers") or []):
            extra = set(meta.get("finalizers") or []) - set(cur_meta.get("finalizers") or [])
            if extra:
                raise invalid(rtype.kind, cur_meta["name"],
                              "metadata.finalizers: Forbidden: no new finalizers can be added "
                              "if the object is being deleted", rtype.group)
        new["apiVersion"], new["kind"] = rtype.api_version, rtype.kind
        validate_metadata(rtype, new)
        normalize(new)
        if subresource is None and not meta.get("deletionTimestamp"):
            self._admit(rtype, new)
        if subresource is None and _spec_part(new) != _spec_part(current):
            meta["generation"] = int(cur_meta.get("generation", 1)) + 1
        if dry_run:
            return new
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and not (
                self._graceful_pending(rtype, new)):
            self._remove(rtype, key, new)
            self._after_removal(rtype, key, new, "Background")
            return new
        self._put(rtype, key, new, "MODIFIED")
        return new

    def patch(self, resource: str | ResourceType, name: str, body: Any, *,
              namespace: str | None = None, patch_type: str = "merge",
              subresource: str | None = None, dry_run: bool = False) -> dict[str, Any]:
        """Apply a JSON, merge or strategic merge patch (``patch_type`` is ``"json"``,
        ``"merge"``, ``"strategic"`` or the content type). Strategic merge on a custom
        resource gives 415, as on a real server."""
        rtype = self.resource(resource)
        ptype = PATCH_TYPES.get(patch_type)
        if ptype is None:
            raise unsupported_media_type(patch_type)
        if ptype == PATCH_STRATEGIC and not rtype.builtin:
            raise unsupported_media_type(ptype)
        if ptype == PATCH_MERGE and not isinstance(body, dict):
            raise bad_request("json: cannot unmarshal a non-object merge patch into the "
                              f"{rtype.kind}")
        with self._lock:
            key = self._key(rtype, name, namespace)
            current = self._objects[rtype.key].get(key)
            if current is None:
                raise not_found(rtype.group, rtype.plural, name)
            try:
                if ptype == PATCH_JSON:
                    new = patches.json_patch(current, body)
                elif ptype == PATCH_MERGE:
                    new = patches.merge_patch(current, body)
                else:
                    new = patches.strategic_merge_patch(current, body)
            except patches.PatchError as exc:
                if exc.bad_request:
                    raise bad_request(str(exc)) from exc
                raise ApiError(422, "Invalid", f"the server rejected our request due to an "
                                               f"error in our request: {exc}") from exc
            if not isinstance(new, dict):
                raise bad_request("the patched object is not a JSON object")
            want_rv = (new.get("metadata") or {}).get("resourceVersion")
            if want_rv not in (None, "") and str(want_rv) != current["metadata"][
                    "resourceVersion"]:
                raise conflict(rtype.group, rtype.plural, name)
            if subresource == "status":
                new = {**copy.deepcopy(current), "status": new.get("status")}
                if new["status"] is None:
                    del new["status"]
            elif rtype.status and subresource is None:
                new["status"] = copy.deepcopy(current.get("status"))
                if new["status"] is None:
                    del new["status"]
            if (new.get("metadata") or {}).get("name", name) != name:
                raise bad_request("the name of the object does not match the name on the URL")
            return copy.deepcopy(self._write(rtype, key, current, new,
                                             "status" if subresource == "status" else None,
                                             dry_run=dry_run))

    def apply(self, resource: str | ResourceType, name: str, body: Any, *,
              namespace: str | None = None, subresource: str | None = None,
              dry_run: bool = False) -> tuple[dict[str, Any], bool]:
        """Server-side apply (``application/apply-patch+yaml``): create the object when it
        does not exist, else merge the applied configuration into it (strategic merge for
        built-in kinds, JSON merge for custom resources). Field managers and conflicts
        are not tracked. Returns the object and whether it was created."""
        rtype = self.resource(resource)
        if not isinstance(body, dict):
            raise bad_request("the applied configuration must be an object")
        meta = body.get("metadata")
        if not isinstance(meta, dict):
            raise bad_request("metadata: Required value: the applied configuration needs "
                              "metadata")
        if meta.get("name") not in (None, name):
            raise bad_request("the name of the object does not match the name on the URL")
        for field in ("apiVersion", "kind"):
            if not body.get(field):
                raise bad_request(f"{field} must be set in the applied configuration")
        self._check_kind(rtype, body)
        with self._lock:
            if self._objects[rtype.key].get(self._key(rtype, name, namespace)) is None:
                if subresource is not None:
                    raise not_found(rtype.group, rtype.plural, name)
                created = {**body, "metadata": {**meta, "name": name}}
                return self.create(rtype, created, namespace=namespace, dry_run=dry_run), True
            merge = {**body, "metadata": {k: v for k, v in meta.items()
                                          if k not in ("resourceVersion", "managedFields")}}
            ptype = "strategic" if rtype.builtin else "merge"
            return self.patch(rtype, name, merge, namespace=namespace, patch_type=ptype,
                              subresource=subresource, dry_run=dry_run), False

    # ------------------------------------------------------------------ scale subresource

    def get_scale(self, resource: str | ResourceType, name: str, *,
                  namespace: str | None = None) -> dict[str, Any]:
        """The ``autoscaling/v1`` Scale of a resource with a scale subresource."""
        rtype = self.resource(resource)
        if rtype.scale is None:
            raise not_found(rtype.group, f"{rtype.plural}/scale", name)
        return _scale_of(rtype, self.get(rtype, name, namespace=namespace))

    def update_scale(self, resource: str | ResourceType, name: str, scale: dict[str, Any], *,
                     namespace: str | None = None) -> dict[str, Any]:
        rtype = self.resource(resource)
        if rtype.scale is None:
            raise not_found(rtype.group, f"{rtype.plural}/scale", name)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise invalid("Scale", name, "spec.replicas: Invalid value: must be a "
                          "non-negative integer", "autoscaling")
        with self._lock:
            current = self.get(rtype, name, namespace=namespace)
            want_rv = (scale.get("metadata") or {}).get("resourceVersion")
            if want_rv not in (None, "") and str(want_rv) != current["metadata"][
                    "resourceVersion"]:
                raise conflict(rtype.group, rtype.plural, name)
            _set_path(current, rtype.scale.spec_replicas, replicas)
            current["metadata"].pop("resourceVersion", None)
            return _scale_of(rtype, self.update(rtype, current, namespace=namespace))

    def patch_scale(self, resource: str | ResourceType, name: str, body: Any, *,
                    namespace: str | None = None, patch_type: str = "merge") -> dict[str, Any]:
        with self._lock:
            scale = self.get_scale(resource, name, namespace=namespace)
            ptype = PATCH_TYPES.get(patch_type)
            try:
                if ptype == PATCH_JSON:
                    new = patches.json_patch(scale, body)
                elif ptype == PATCH_MERGE:
                    new = patches.merge_patch(scale, body)
                elif ptype == PATCH_STRATEGIC:
                    new = patches.strategic_merge_patch(scale, body)
                else:
                    raise unsupported_media_type(patch_type)
            except patches.PatchError as exc:
                raise bad_request(str(exc)) from exc
            return self.update_scale(resource, name, new, namespace=namespace)

    # ------------------------------------------------------------------ delete

    def delete(self, resource: str | ResourceType, name: str, *,
               namespace: str | None = None, grace_period_seconds: int | None = None,
               propagation_policy: str | None = None,
               preconditions: dict[str, Any] | None = None) -> dict[str, Any]:
        """Delete an object; returns its last state (with ``deletionTimestamp`` when the
        deletion waits on finalizers or a pod's grace period)."""
        rtype = self.resource(resource)
        if propagation_policy not in (None, "Orphan", "Background", "Foreground"):
            raise bad_request(f"propagationPolicy {propagation_policy!r} is not one of "
                              "Orphan, Background, Foreground")
        with self._lock:
            key = self._key(rtype, name, namespace)
            current = self._objects[rtype.key].get(key)
            if current is None:
                raise not_found(rtype.group, rtype.plural, name)
            pre = preconditions or {}
            if (pre.get("uid") and pre["uid"] != current["metadata"]["uid"]) or (
                    pre.get("resourceVersion")
                    and str(pre["resourceVersion"]) != current["metadata"]["resourceVersion"]):
                raise conflict(rtype.group, rtype.plural, name)
            self._removed_namespaces.clear()
            return copy.deepcopy(self._delete(rtype, key, grace_period_seconds,
                                              propagation_policy or "Background"))

    def _delete(self, rtype: ResourceType, key: Key, grace: int | None,
                policy: str) -> dict[str, Any]:
        current = self._objects[rtype.key][key]
        if rtype.key == "namespaces":
            return self._delete_namespace(key[1])
        if policy == "Foreground":
            self._cascade(current["metadata"]["uid"], "Foreground")
        finalizers = current["metadata"].get("finalizers") or []
        terminating = bool(current["metadata"].get("deletionTimestamp"))
        grace_s = self._grace(rtype, current, grace)
        if finalizers or grace_s > 0:
            if terminating:
                return current
            new = copy.deepcopy(current)
            meta = new["metadata"]
            meta["deletionTimestamp"] = format_time(self.clock() + grace_s)
            meta["deletionGracePeriodSeconds"] = grace_s
            meta["generation"] = int(meta.get("generation", 1)) + 1
            self._put(rtype, key, new, "MODIFIED")
            return new
        last = copy.deepcopy(current)
        self._remove(rtype, key, last)
        self._after_removal(rtype, key, last, policy)
        return last

    def _grace(self, rtype: ResourceType, obj: dict[str, Any], grace: int | None) -> int:
        """Seconds a pod on a node waits for its kubelet (only with ``graceful_pods``)."""
        if not (self.graceful_pods and rtype.key == "pods"
                and (obj.get("spec") or {}).get("nodeName")):
            return 0
        if obj.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return 0
        if grace is None:
            grace = int(obj["spec"].get("terminationGracePeriodSeconds", 30))
        return max(0, int(grace))

    def _graceful_pending(self, rtype: ResourceType, obj: dict[str, Any]) -> bool:
        return bool(self.graceful_pods and rtype.key == "pods"
                    and obj["metadata"].get("deletionGracePeriodSeconds"))

    def _after_removal(self, rtype: ResourceType, key: Key, last: dict[str, Any],
                       policy: str) -> None:
        self._cascade(last["metadata"]["uid"], policy)
        if rtype.namespaced:
            ns = self._objects["namespaces"].get(("", key[0]))
            if ns is not None and ns["metadata"].get("deletionTimestamp"):
                self._finish_namespace(key[0])

    def _cascade(self, owner_uid: str, policy: str) -> None:
        """Garbage-collect (or orphan) the dependents of a removed owner."""
        for dep_key, key in sorted(self._owners.get(owner_uid, set())):
            dep_type = self.registry.get(dep_key)
            dep = self._objects[dep_key].get(key)
            if dep is None:
                continue
            if policy == "Orphan":
                new = copy.deepcopy(dep)
                new["metadata"]["ownerReferences"] = [
                    r for r in new["metadata"].get("ownerReferences") or []
                    if r.get("uid") != owner_uid]
                if not new["metadata"]["ownerReferences"]:
                    del new["metadata"]["ownerReferences"]
                self._put(dep_type, key, new, "MODIFIED")
            elif not dep["metadata"].get("deletionTimestamp") or not dep["metadata"].get(
                    "finalizers"):
                self._delete(dep_type, key, None, "Background")

    def _delete_namespace(self, name: str) -> dict[str, Any]:
        key = ("", name)
        ns = self._objects["namespaces"][key]
        if not ns["metadata"].get("deletionTimestamp"):
            new = copy.deepcopy(ns)
            new["metadata"]["deletionTimestamp"] = self._now()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new.setdefault("status", {})["phase"] = "Terminating"
            self._put(self.registry.get("namespaces"), key, new, "MODIFIED")
            for rtype in self.registry.types:
                if not rtype.namespaced:
                    continue
                for okey in sorted(k for k in self._objects[rtype.key] if k[0] == name):
                    if okey in self._objects[rtype.key]:
                        self._delete(rtype, okey, None, "Background")
        if key not in self._objects["namespaces"]:  # removed with its last object
            return copy.deepcopy(self._removed_namespaces.pop(name))
        return copy.deepcopy(self._finish_namespace(name))

    def _finish_namespace(self, name: str) -> dict[str, Any]:
        """Remove a terminating namespace once nothing is left in it."""
        key = ("", name)
        ns = self._objects["namespaces"][key]
        for rtype in self.registry.types:
            if rtype.namespaced and any(k[0] == name for k in self._objects[rtype.key]):
                return ns
        last = copy.deepcopy(ns)
        last.setdefault("spec", {})["finalizers"] = []
        self._remove(self.registry.get("namespaces"), key, last)
        self._removed_namespaces[name] = last
        return last

    # ------------------------------------------------------------------ watch

    def watch(self, resource: str | ResourceType, *, namespace: str | None = None,
              resource_version: str | int | None = None,
              label_selector: str | LabelSelector | None = None,
              field_selector: str | FieldSelector | None = None,
              send_initial_events: bool | None = None) -> Watch:
        """Subscribe to changes. Without ``resource_version`` (or with ``"0"``) the watch
        starts with a synthetic ADDED per current object, in key order; with ``N`` it replays
        the changes after ``N`` from the history, or raises 410 Expired if ``N`` is older
        than the history. ``send_initial_events=True`` forces the synthetic ADDEDs (the
        caller sends the ``initial-events-end`` bookmark)."""
        rtype = self.resource(resource)
        labels, fields = self._selectors(rtype, label_selector, field_selector)
        rv = _parse_rv(resource_version)
        with self._lock:
            w = Watch(rtype, namespace=namespace if rtype.namespaced else None,
                      label_selector=labels, field_selector=fields,
                      max_queue=self.max_watch_queue, on_stop=self._unwatch,
                      current_rv=self._bookmark_rv)
            initial = send_initial_events if send_initial_events is not None else (
                rv is None or rv == 0)
            if initial:
                for key in sorted(self._objects[rtype.key]):
                    obj = self._objects[rtype.key][key]
                    if w.matches(obj):
                        w.push(WatchEvent("ADDED", obj))
            elif rv is not None:
                if rv < self._compacted:
                    raise expired(f"too old resource version: {rv} ({self._compacted})")
                for change in self._history:
                    if change.rv > rv and change.key == rtype.key:
                        w.offer(change.type, change.object, change.old)
            self._watches.setdefault(rtype.key, set()).add(w)
            return w

    def _unwatch(self, w: Watch) -> None:
        with self._lock:
            self._watches.get(w.rtype.key, set()).discard(w)

    def _bookmark_rv(self, w: Watch) -> int | None:
        with self._lock, w._cond:
            return self._rv if w._empty_locked() else None

    def watches(self) -> list[Watch]:
        with self._lock:
            return [w for ws in self._watches.values() for w in ws]

    # ------------------------------------------------------------------ faults / admin

    def compact(self) -> int:
        """Forget the history: every resume from a resourceVersion seen so far gets 410;
        a fresh list returns the new low-water mark (returned), which resumes fine."""
        with self._lock:
            self._rv += 1  # a gap, as other writes leave: fresh lists resume above the mark
            self._history.clear()
            self._compacted = self._rv
            return self._compacted

    def drop_watches(self, reason: str = "dropped") -> int:
        """Close every open watch (clients see their streams end). Returns how many."""
        with self._lock:
            all_watches = [w for ws in self._watches.values() for w in ws]
            self._watches.clear()
        for w in all_watches:
            w.close(reason)
        return len(all_watches)

    def count(self, resource: str | ResourceType, namespace: str | None = None) -> int:
        rtype = self.resource(resource)
        with self._lock:
            return sum(1 for k in self._objects[rtype.key]
                       if namespace is None or k[0] == namespace)

    def resources(self) -> Iterable[ResourceType]:
        return list(self.registry.types)


def _spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _get_path(obj: dict[str, Any], path: str) -> Any:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    cur = obj
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value


def _scale_of(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    assert rtype.scale is not None
    meta = obj["metadata"]
    selector = _get_path(obj, rtype.scale.selector)
    sel_text = ""
    if isinstance(selector, dict):
        parsed = label_selector_from_object(selector)
        sel_text = ",".join(
            f"{r.key}={r.values[0]}" if r.op == "=" else f"{r.key} {r.op} ({','.join(r.values)})"
            for r in parsed.requirements)
    status: dict[str, Any] = {"replicas": int(_get_path(obj, rtype.scale.status_replicas) or 0)}
    if sel_text:
        status["selector"] = sel_text
    return {
        "apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                          "creationTimestamp") if k in meta},
        "spec": {"replicas": int(_get_path(obj, rtype.scale.spec_replicas) or 0)},
        "status": status,
    }
