"""The Deployment and ReplicaSet controllers of kube-controller-manager, in one worker.

A Deployment owns one ReplicaSet per pod template it has had, named
``<deployment>-<pod-template-hash>``; the ReplicaSet owns the pods
(``<replicaset>-<5 chars>``). As on a real cluster:

- the hash is FNV-32a of the template, spelled with ``rand.SafeEncodeString``'s alphabet
  (``bcdfghjklmnpqrstvwxz2456789``), and is the ``pod-template-hash`` label of the
  ReplicaSet, of its selector and template, and of every pod;
- owner references are ``controller: true, blockOwnerDeletion: true`` (Deployment ->
  ReplicaSet -> pod), so deleting the Deployment takes both down;
- each ReplicaSet carries ``deployment.kubernetes.io/revision`` (1, 2, ... as templates
  change; a template seen before gets its ReplicaSet back with a new revision),
  ``desired-replicas`` and ``max-replicas`` (25 % surge), plus the Deployment's own
  annotations (``kubernetes.io/change-cause`` included), which is what
  ``kubectl rollout history`` lists; the Deployment carries the current revision;
- statuses: ReplicaSet ``replicas``/``fullyLabeledReplicas``/``readyReplicas``/
  ``availableReplicas``, Deployment the same summed plus ``updatedReplicas`` and the
  ``Available``/``Progressing`` conditions.

Simplification: a template change is rolled out as ``Recreate`` (the new ReplicaSet gets
every replica at once, the old ones go to 0), not a surge-limited rolling update; Knative
never changes a revision's template, so its Deployments have exactly one ReplicaSet.
Scale-down removes pods in ReplicaSet order: unscheduled first, then not ready, then the
newest.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Hashable, Iterable
from typing import Any

from harness.emulator.api.subscriptions import WatchEvent
from harness.emulator.controllers.base import Controller, condition, owner_ref
from harness.objects import REVISION_LABEL, condition_status

DEPLOY = "apps/deployments"
RS = "apps/replicasets"
HASH_LABEL = "pod-template-hash"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
DESIRED_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_ANNOTATION = "deployment.kubernetes.io/max-replicas"
_NOT_COPIED = ("kubectl.kubernetes.io/last-applied-configuration", REVISION_ANNOTATION,
               "deployment.kubernetes.io/revision-history", DESIRED_ANNOTATION, MAX_ANNOTATION)
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: dict[str, Any]) -> str:
    """``controller.ComputeHash``: FNV-32a of the template, safe-encoded (``7d9c8b6f5``)."""
    h = 0x811C9DC5
    for byte in json.dumps(template, sort_keys=True).encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE[ord(c) % len(_SAFE)] for c in str(h))


def pod_ready(pod: dict[str, Any]) -> bool:
    return condition_status(pod, "Ready") == "True" and not pod["metadata"].get("deletionTimestamp")


def _delete_rank(pod: dict[str, Any]) -> tuple[int, int, str]:
    scheduled = 1 if (pod.get("spec") or {}).get("nodeName") else 0
    ready = 1 if pod_ready(pod) else 0
    created = pod["metadata"].get("creationTimestamp", "")
    # ascending: unscheduled, not ready, then newest first (negated by sorting reverse)
    return (scheduled, ready, "".join(chr(0x10FFFF - ord(c)) for c in created))


def _controller_uid(obj: dict[str, Any]) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def _revision(rs: dict[str, Any]) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION, "0"))
    except ValueError:
        return 0


def _max_surge(replicas: int) -> int:
    return replicas + math.ceil(replicas * 0.25)


class DeploymentController(Controller):
    """Deployments -> ReplicaSets -> pods, and the status of each."""

    name = "deployments"
    resources = (DEPLOY, RS, "pods")
    truth: Any = None
    """A :class:`~harness.emulator.truth.TruthLog` for pod deletions, or None."""

    def keys_for(self, resource: str, event: WatchEvent) -> Iterable[Hashable]:
        meta = event.object["metadata"]
        ns = meta["namespace"]
        owners = [(ref.get("kind"), ref["name"]) for ref in meta.get("ownerReferences") or []
                  if ref.get("controller")]
        if resource == "pods":
            return [(RS, ns, name) for kind, name in owners if kind == "ReplicaSet"]
        if resource == RS:
            return [(RS, ns, meta["name"])] + [(DEPLOY, ns, name) for kind, name in owners
                                               if kind == "Deployment"]
        return [(DEPLOY, ns, meta["name"])]

    async def reconcile(self, key: Hashable) -> None:
        resource, ns, name = key  # type: ignore[misc]
        if resource == RS:
            self._reconcile_rs(ns, name)
        else:
            self._reconcile_deployment(ns, name)

    # ------------------------------------------------------------------ Deployment

    def _owned_rs(self, dep: dict[str, Any]) -> list[dict[str, Any]]:
        uid = dep["metadata"]["uid"]
        return [rs for rs in self.store.list(RS, namespace=dep["metadata"]["namespace"])[
            "items"] if _controller_uid(rs) == uid]

    def _reconcile_deployment(self, ns: str, name: str) -> None:
        dep = self.store.try_get(DEPLOY, name, namespace=ns)
        if dep is None or dep["metadata"].get("deletionTimestamp"):
            return
        spec = dep.get("spec") or {}
        want = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        thash = template_hash(template)
        owned = self._owned_rs(dep)
        current = next((rs for rs in owned
                        if (rs["metadata"].get("labels") or {}).get(HASH_LABEL) == thash), None)
        top = max((_revision(rs) for rs in owned), default=0)
        annotations = {k: v for k, v in (dep["metadata"].get("annotations") or {}).items()
                       if k not in _NOT_COPIED}
        if current is None:
            current = self._create_rs(dep, template, thash, want, top + 1, annotations)
        else:
            rev = _revision(current)
            if rev < top:  # back to an older template: it becomes the newest revision
                rev = top + 1
            rs_ann = dict(current["metadata"].get("annotations") or {})
            new_ann = {**rs_ann, **annotations, REVISION_ANNOTATION: str(rev),
                       DESIRED_ANNOTATION: str(want), MAX_ANNOTATION: str(_max_surge(want))}
            if int((current.get("spec") or {}).get("replicas", 0)) != want or new_ann != rs_ann:
                current["metadata"]["annotations"] = new_ann
                current["spec"]["replicas"] = want
                current = self.store.update(RS, current, namespace=ns)
        for rs in owned:
            if rs["metadata"]["uid"] != current["metadata"]["uid"] and int(
                    (rs.get("spec") or {}).get("replicas", 0)) != 0:
                self.store.patch(RS, rs["metadata"]["name"], {"spec": {"replicas": 0}},
                                 namespace=ns)
        revision = (current["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION, "1")
        if (dep["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION) != revision:
            dep = self.store.patch(DEPLOY, name, {"metadata": {"annotations": {
                REVISION_ANNOTATION: revision}}}, namespace=ns)
        self._deployment_status(dep, self._owned_rs(dep), current, want)

    def _create_rs(self, dep: dict[str, Any], template: dict[str, Any], thash: str,
                   replicas: int, revision: int, annotations: dict[str, str],
                   ) -> dict[str, Any]:
        meta = dep["metadata"]
        tmpl = copy.deepcopy(template)
        tmeta = tmpl.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), HASH_LABEL: thash}
        selector = copy.deepcopy((dep.get("spec") or {}).get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = thash
        return self.store.create(RS, {
            "metadata": {"name": f"{meta['name']}-{thash}", "labels": dict(tmeta["labels"]),
                         "annotations": {**annotations, REVISION_ANNOTATION: str(revision),
                                         DESIRED_ANNOTATION: str(replicas),
                                         MAX_ANNOTATION: str(_max_surge(replicas))},
                         "ownerReferences": [owner_ref(dep)]},
            "spec": {"replicas": replicas, "selector": selector, "template": tmpl,
                     "minReadySeconds": int((dep.get("spec") or {}).get("minReadySeconds",
                                                                          0))}},
            namespace=meta["namespace"])

    def _deployment_status(self, dep: dict[str, Any], owned: list[dict[str, Any]],
                           current: dict[str, Any], want: int) -> None:
        def total(field: str, items: Iterable[dict[str, Any]] = owned) -> int:
            return sum(int((rs.get("status") or {}).get(field, 0)) for rs in items)

        ready = total("readyReplicas")
        old = dep.get("status") or {}
        prev = old.get("conditions") or []
        available = ready >= want
        current_name = current["metadata"]["name"]
        status: dict[str, Any] = {
            "observedGeneration": dep["metadata"].get("generation", 1),
            "replicas": total("replicas"),
            "updatedReplicas": total("replicas", [current]),
            "readyReplicas": ready, "availableReplicas": total("availableReplicas"),
            "unavailableReplicas": max(0, want - total("availableReplicas")),
            "conditions": [
                condition("Available", "True" if available else "False",
                          "MinimumReplicasAvailable" if available
                          else "MinimumReplicasUnavailable",
                          "Deployment has minimum availability." if available
                          else "Deployment does not have minimum availability.", prev),
                condition("Progressing", "True", "NewReplicaSetAvailable",
                          f'ReplicaSet "{current_name}" has successfully progressed.', prev),
            ],
        }
        for k in ("readyReplicas", "availableReplicas", "unavailableReplicas",
                  "updatedReplicas", "replicas"):
            if not status[k]:
                del status[k]
        if status != old:
            self.store.patch(DEPLOY, dep["metadata"]["name"],
                             [{"op": "add", "path": "/status", "value": status}],
                             namespace=dep["metadata"]["namespace"], patch_type="json",
                             subresource="status")

    # ------------------------------------------------------------------ ReplicaSet

    def _reconcile_rs(self, ns: str, name: str) -> None:
        rs = self.store.try_get(RS, name, namespace=ns)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return
        uid = rs["metadata"]["uid"]
        pods = [p for p in self.store.list("pods", namespace=ns, copy_items=False)["items"]
                if _controller_uid(p) == uid]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        want = int((rs.get("spec") or {}).get("replicas", 1))
        if len(live) < want:
            for _ in range(want - len(live)):
                self._create_pod(rs)
        elif len(live) > want:
            for pod in sorted(live, key=_delete_rank)[: len(live) - want]:
                self.store.delete("pods", pod["metadata"]["name"], namespace=ns)
                if self.truth is not None:
                    self.truth.add("pod-terminating", ns, pod["metadata"]["name"],
                                   revision=(pod["metadata"].get("labels") or {}).get(
                                       REVISION_LABEL, ""))
        ready = sum(1 for p in live if pod_ready(p))
        status: dict[str, Any] = {"replicas": len(live), "fullyLabeledReplicas": len(live),
                                  "readyReplicas": ready, "availableReplicas": ready,
                                  "observedGeneration": rs["metadata"].get("generation", 1)}
        for k in ("readyReplicas", "availableReplicas", "fullyLabeledReplicas"):
            if not status[k]:
                del status[k]
        if status != (rs.get("status") or {}):
            self.store.patch(RS, name, [{"op": "add", "path": "/status", "value": status}],
                             namespace=ns, patch_type="json", subresource="status")

    def _create_pod(self, rs: dict[str, Any]) -> None:
        meta = rs["metadata"]
        template = (rs.get("spec") or {}).get("template") or {}
        tmeta = copy.deepcopy(template.get("metadata") or {})
        body = {
            "metadata": {"generateName": f"{meta['name']}-", "labels": tmeta.get("labels") or {},
                         "annotations": tmeta.get("annotations") or {},
                         "ownerReferences": [owner_ref(rs)]},
            "spec": copy.deepcopy(template.get("spec") or {}),
        }
        if not body["metadata"]["annotations"]:
            del body["metadata"]["annotations"]
        self.store.create("pods", body, namespace=meta["namespace"])
