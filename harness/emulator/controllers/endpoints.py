"""The endpoints controller: tells the ingress which pods of each revision are ready.

For every revision (pods labelled ``serving.knative.dev/revision``) the ready,
non-terminating pods with a published port become the ingress's endpoints, with the
revision's ``containerConcurrency`` as queue-proxy's limit (the activator's view of the
pods). It also keeps the core/v1 ``Endpoints`` of the revision's private Service,
``<rev>-private``, as Kubernetes' endpoints controller does (ready pods in
``addresses``, starting ones in ``notReadyAddresses``, the Service's labels), which the
ServerlessService controller copies into the public ``<rev>`` Endpoints in Serve mode.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

from harness.emulator.api.status import ApiError
from harness.emulator.api.store import Store
from harness.emulator.api.subscriptions import WatchEvent
from harness.emulator.controllers.base import Controller
from harness.emulator.controllers.deployments import pod_ready
from harness.emulator.controllers.kubelet import PORT_ANNOTATION
from harness.emulator.controllers.sks import SKS_LABEL, TYPE_LABEL, private_name
from harness.objects import REVISION_LABEL

REVISION = "serving.knative.dev/revisions"


def ready_endpoints(pods: Iterable[dict[str, Any]]) -> list[tuple[str, str, int]]:
    out = []
    for pod in pods:
        port = (pod["metadata"].get("annotations") or {}).get(PORT_ANNOTATION)
        if port and pod_ready(pod):
            ip = (pod.get("status") or {}).get("podIP") or "127.0.0.1"
            out.append((pod["metadata"]["name"], ip, int(port)))
    return sorted(out)


class EndpointsController(Controller):
    """Feeds ``Ingress.set_endpoints`` from pod readiness."""

    name = "endpoints"
    resources = ("pods",)

    def __init__(self, store: Store, *, ingress: Any = None) -> None:
        super().__init__(store)
        self.ingress = ingress
        self.current: dict[tuple[str, str], list[tuple[str, str, int]]] = {}

    def keys_for(self, resource: str, event: WatchEvent) -> Iterable[Hashable]:
        meta = event.object["metadata"]
        rev = (meta.get("labels") or {}).get(REVISION_LABEL)
        return [(meta["namespace"], rev)] if rev else []

    async def reconcile(self, key: Hashable) -> None:
        ns, rev = key  # type: ignore[misc]
        pods = self.store.list("pods", namespace=ns,
                               label_selector=f"{REVISION_LABEL}={rev}")["items"]
        endpoints = ready_endpoints(pods)
        if self.current.get((ns, rev)) != endpoints:
            self.current[(ns, rev)] = endpoints
            revision = self.store.try_get(REVISION, rev, namespace=ns)
            cc = int(((revision or {}).get("spec") or {}).get("containerConcurrency") or 0)
            if self.ingress is not None:
                self.ingress.set_endpoints(ns, rev, endpoints, cc)
        starting = sorted((p["metadata"]["name"], (p.get("status") or {}).get("podIP")
                           or "127.0.0.1")
                          for p in pods if not p["metadata"].get("deletionTimestamp")
                          and (p.get("status") or {}).get("podIP") and not pod_ready(p))

        def address(name: str, ip: str) -> dict[str, Any]:
            return {"ip": ip, "targetRef": {"kind": "Pod", "name": name, "namespace": ns}}

        subset: dict[str, Any] = {}
        if endpoints:
            subset["addresses"] = [address(name, ip) for name, ip, _ in endpoints]
        if starting:
            subset["notReadyAddresses"] = [address(name, ip) for name, ip in starting]
        if subset:
            port = endpoints[0][2] if endpoints else 8012
            subset["ports"] = [{"name": "http", "port": port, "protocol": "TCP"}]
        subsets = [subset] if subset else []
        name = private_name(rev)
        try:
            current = self.store.try_get("endpoints", name, namespace=ns)
            if current is None:
                self.store.create("endpoints", {
                    "metadata": {"name": name, "namespace": ns, "labels": {
                        REVISION_LABEL: rev, SKS_LABEL: rev, TYPE_LABEL: "Private"}},
                    "subsets": subsets}, namespace=ns)
            elif current.get("subsets") != subsets:
                current["subsets"] = subsets
                self.store.update("endpoints", current, namespace=ns)
        except ApiError:
            pass  # namespace closing: nothing to publish
