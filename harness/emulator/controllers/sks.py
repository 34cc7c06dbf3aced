"""The ServerlessService controller (``pkg/reconciler/serverlessservice``): who a revision's
public endpoints are, and so whether the activator is in its request path.

The KPA writes one ``ServerlessService`` per revision (``spec.mode`` Proxy or Serve,
``numActivators``, ``objectRef`` = the Deployment); this controller keeps, as upstream:

- the private Service ``<rev>-private`` (selector = the Deployment's, ports http 80 ->
  8012, queue metrics 9090/9091, queue admin 8022) whose Endpoints the endpoints
  controller fills with the revision's pods;
- the public Service ``<rev>`` (no selector, http 80 -> 8012) and its Endpoints, copied
  from the private Endpoints in ``Serve`` mode when a pod is ready, else from the
  activator's (``activator-service`` in ``knative-serving``: the ingress's address);
- ``status``: ``serviceName``, ``privateServiceName``, ``EndpointsPopulated`` /
  ``ActivatorEndpointsPopulated`` / ``Ready`` with upstream's reasons and messages.

The ingress honours the public endpoints: while they are the activator's, every request
of the revision takes the activator path (buffered, counted as proxied, reported by the
activator); in Serve mode with ready pods requests go straight to queue-proxy.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable, Iterable
from typing import Any

from harness.emulator.api.status import ApiError
from harness.emulator.api.store import Store
from harness.emulator.api.subscriptions import WatchEvent
from harness.emulator.controllers.base import Controller, condition, owner_ref, set_status

SKS = "networking.internal.knative.dev/serverlessservices"
DEPLOY = "apps/deployments"
SKS_LABEL = "networking.internal.knative.dev/serverlessservice"
TYPE_LABEL = "networking.internal.knative.dev/serviceType"
SYSTEM_NS = "knative-serving"
ACTIVATOR_SERVICE = "activator-service"
PROXY, SERVE = "Proxy", "Serve"
_BACKED = "Revision is backed by Activator"


def private_name(sks: str) -> str:
    return f"{sks}-private"


def ready_count(endpoints: dict[str, Any] | None) -> int:
    return sum(len(s.get("addresses") or []) for s in (endpoints or {}).get("subsets") or [])


class ServerlessServiceController(Controller):
    """Reconciles each SKS's Services and public Endpoints, and tells the ingress."""

    name = "serverlessservice"
    resources = (SKS, "endpoints")

    def __init__(self, store: Store, *, ingress: Any = None) -> None:
        super().__init__(store)
        self.ingress = ingress

    def keys_for(self, resource: str, event: WatchEvent) -> Iterable[Hashable]:
        meta = event.object["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        if resource == SKS:
            return [(ns, name)]
        if (ns, name) == (SYSTEM_NS, ACTIVATOR_SERVICE):  # every SKS follows the activator
            return [(s["metadata"]["namespace"], s["metadata"]["name"])
                    for s in self.store.list(SKS, copy_items=False)["items"]]
        labels = meta.get("labels") or {}
        if labels.get(TYPE_LABEL) == "Private" and labels.get(SKS_LABEL):
            return [(ns, labels[SKS_LABEL])]
        return []

    async def reconcile(self, key: Hashable) -> None:
        ns, name = key  # type: ignore[misc]
        sks = self.store.try_get(SKS, name, namespace=ns)
        if sks is None or sks["metadata"].get("deletionTimestamp"):
            return
        spec = sks.get("spec") or {}
        mode = spec.get("mode", SERVE)
        labels = {**(sks["metadata"].get("labels") or {}), SKS_LABEL: name}
        annotations = dict(sks["metadata"].get("annotations") or {})
        owner = [owner_ref(sks)]
        self._ensure("services", ns, private_name(name), {
            "metadata": {"labels": {**labels, TYPE_LABEL: "Private"},
                         "annotations": annotations, "ownerReferences": owner},
            "spec": {"type": "ClusterIP", "selector": self._selector(ns, spec),
                     "ports": [
                         {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8012},
                         {"name": "http-autometric", "protocol": "TCP", "port": 9090,
                          "targetPort": "http-autometric"},
                         {"name": "http-usermetric", "protocol": "TCP", "port": 9091,
                          "targetPort": "http-usermetric"},
                         {"name": "http-queueadm", "protocol": "TCP", "port": 8022,
                          "targetPort": 8022},
                         {"name": "http-istio", "protocol": "TCP", "port": 8012,
                          "targetPort": 8012}]}})
        self._ensure("services", ns, name, {
            "metadata": {"labels": {**labels, TYPE_LABEL: "Public"},
                         "annotations": annotations, "ownerReferences": owner},
            "spec": {"type": "ClusterIP", "ports": [
                {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8012}]}})
        private = self.store.try_get("endpoints", private_name(name), namespace=ns)
        activator = self.store.try_get("endpoints", ACTIVATOR_SERVICE, namespace=SYSTEM_NS)
        pods_ready = ready_count(private) > 0
        via_activator = mode == PROXY or not pods_ready
        source = activator if via_activator else private
        self._ensure("endpoints", ns, name, {
            "metadata": {"labels": {**labels, TYPE_LABEL: "Public"},
                         "annotations": annotations, "ownerReferences": owner},
            "subsets": copy.deepcopy((source or {}).get("subsets") or [])})
        if self.ingress is not None:
            self.ingress.set_proxy_mode(ns, name, via_activator)
        prev = (sks.get("status") or {}).get("conditions") or []
        populated = (condition("EndpointsPopulated", "True", "", "", prev) if pods_ready
                     else condition("EndpointsPopulated", "Unknown", "NoHealthyBackends",
                                    "K8s Service is not ready", prev))
        ready = condition("Ready", populated["status"], populated.get("reason", ""),
                          populated.get("message", ""), prev)
        backed = condition("ActivatorEndpointsPopulated", "True" if via_activator else "False",
                           "ActivatorEndpointsPopulated", _BACKED, prev, severity="Info")
        set_status(self.store, SKS, sks, {
            "observedGeneration": sks["metadata"].get("generation", 1),
            "serviceName": name, "privateServiceName": private_name(name),
            "conditions": [backed, populated, ready]})

    def _selector(self, ns: str, spec: dict[str, Any]) -> dict[str, str]:
        ref = spec.get("objectRef") or {}
        dep = self.store.try_get(DEPLOY, str(ref.get("name", "")), namespace=ns)
        return dict((((dep or {}).get("spec") or {}).get("selector") or {}).get(
            "matchLabels") or {})

    def _ensure(self, resource: str, ns: str, name: str, desired: dict[str, Any]) -> None:
        """Create, or update the parts this controller owns (labels, spec, subsets)."""
        try:
            current = self.store.try_get(resource, name, namespace=ns)
            if current is None:
                body = copy.deepcopy(desired)
                body["metadata"]["name"] = name
                self.store.create(resource, body, namespace=ns)
                return
            new = copy.deepcopy(current)
            for part in ("spec", "subsets"):
                if part in desired:
                    if part == "spec":
                        new["spec"] = {**(current.get("spec") or {}), **desired["spec"]}
                    else:
                        new[part] = desired[part]
            new["metadata"]["labels"] = desired["metadata"]["labels"]
            if new != current:
                self.store.update(resource, new, namespace=ns)
        except ApiError:
            pass  # namespace closing: nothing to publish
