"""The Deployment controller: keeps ``spec.replicas`` pods of each Deployment and its status.

Simplification: pods are owned by the Deployment directly (no ReplicaSet layer); their
names still look like ``<deployment>-<template hash>-<5 chars>`` and they carry the
``pod-template-hash`` label. Scale-down removes pods in ReplicaSet order: unscheduled
first, then not ready, then the newest.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Hashable, Iterable
from typing import Any

from harness.emulator.api.subscriptions import WatchEvent
from harness.emulator.controllers.base import Controller, cond_status, condition, owner_ref


def template_hash(template: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    return str(int(digest[:8], 16) % 10**10)[:10]


def pod_ready(pod: dict[str, Any]) -> bool:
    return cond_status(pod, "Ready") == "True" and not pod["metadata"].get("deletionTimestamp")


def _delete_rank(pod: dict[str, Any]) -> tuple[int, int, str]:
    scheduled = 1 if (pod.get("spec") or {}).get("nodeName") else 0
    ready = 1 if pod_ready(pod) else 0
    created = pod["metadata"].get("creationTimestamp", "")
    # ascending: unscheduled, not ready, then newest first (negated by sorting reverse)
    return (scheduled, ready, "".join(chr(0x10FFFF - ord(c)) for c in created))


class DeploymentController(Controller):
    """Creates and deletes pods to match each Deployment's replicas."""

    name = "deployments"
    resources = ("apps/deployments", "pods")
    truth: Any = None
    """A :class:`~harness.emulator.truth.TruthLog` for pod deletions, or None."""

    def keys_for(self, resource: str, event: WatchEvent) -> Iterable[Hashable]:
        meta = event.object["metadata"]
        if resource == "pods":
            return [(meta["namespace"], ref["name"]) for ref in meta.get("ownerReferences") or []
                    if ref.get("kind") == "Deployment"]
        return [(meta["namespace"], meta["name"])]

    async def reconcile(self, key: Hashable) -> None:
        ns, name = key  # type: ignore[misc]
        dep = self.store.try_get("apps/deployments", name, namespace=ns)
        if dep is None or dep["metadata"].get("deletionTimestamp"):
            return
        uid = dep["metadata"]["uid"]
        pods = [p for p in self.store.list("pods", namespace=ns)["items"]
                if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        want = int((dep.get("spec") or {}).get("replicas", 1))
        template = (dep.get("spec") or {}).get("template") or {}
        thash = template_hash(template)
        if len(live) < want:
            for _ in range(want - len(live)):
                self._create_pod(dep, template, thash)
        elif len(live) > want:
            for pod in sorted(live, key=_delete_rank)[: len(live) - want]:
                self.store.delete("pods", pod["metadata"]["name"], namespace=ns)
                if self.truth is not None:
                    self.truth.add("pod-terminating", ns, pod["metadata"]["name"],
                                   revision=(pod["metadata"].get("labels") or {}).get(
                                       "serving.knative.dev/revision", ""))
        self._status(dep, live, want)

    def _create_pod(self, dep: dict[str, Any], template: dict[str, Any], thash: str) -> None:
        meta = dep["metadata"]
        tmeta = copy.deepcopy(template.get("metadata") or {})
        labels = {**(tmeta.get("labels") or {}), "pod-template-hash": thash}
        body = {
            "metadata": {"generateName": f"{meta['name']}-{thash}-", "labels": labels,
                         "annotations": tmeta.get("annotations") or {},
                         "ownerReferences": [owner_ref(dep)]},
            "spec": copy.deepcopy(template.get("spec") or {}),
        }
        if not body["metadata"]["annotations"]:
            del body["metadata"]["annotations"]
        self.store.create("pods", body, namespace=meta["namespace"])

    def _status(self, dep: dict[str, Any], live: list[dict[str, Any]], want: int) -> None:
        ready = sum(1 for p in live if pod_ready(p))
        old = dep.get("status") or {}
        prev = old.get("conditions") or []
        available = ready >= want
        status: dict[str, Any] = {
            "observedGeneration": dep["metadata"].get("generation", 1),
            "replicas": len(live), "updatedReplicas": len(live),
            "readyReplicas": ready, "availableReplicas": ready,
            "unavailableReplicas": max(0, len(live) - ready),
            "conditions": [
                condition("Available", "True" if available else "False",
                          "MinimumReplicasAvailable" if available
                          else "MinimumReplicasUnavailable",
                          "Deployment has minimum availability." if available
                          else "Deployment does not have minimum availability.", prev),
                condition("Progressing", "True", "NewReplicaSetAvailable", "", prev),
            ],
        }
        for k in ("readyReplicas", "availableReplicas", "unavailableReplicas"):
            if not status[k]:
                del status[k]
        if status != old:
            self.store.patch("apps/deployments", dep["metadata"]["name"],
                             [{"op": "add", "path": "/status", "value": status}],
                             namespace=dep["metadata"]["namespace"], patch_type="json",
                             subresource="status")
