"""The endpoints controller: tells the ingress which pods of each revision are ready.

For every revision (pods labelled ``serving.knative.dev/revision``) the ready,
non-terminating pods with a published port become the ingress's endpoints, with the
revision's ``containerConcurrency`` as queue-proxy's limit. It also keeps a core/v1
``Endpoints`` object named after the revision, as a real cluster shows it.
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

REVISION = "serving.knative.dev/revisions"
REVISION_LABEL = "serving.knative.dev/revision"


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
        if self.current.get((ns, rev)) == endpoints:
            return
        self.current[(ns, rev)] = endpoints
        revision = self.store.try_get(REVISION, rev, namespace=ns)
        cc = int(((revision or {}).get("spec") or {}).get("containerConcurrency") or 0)
        if self.ingress is not None:
            self.ingress.set_endpoints(ns, rev, endpoints, cc)
        subsets = ([{"addresses": [{"ip": ip, "targetRef": {"kind": "Pod", "name": name,
                                                             "namespace": ns}}
                                   for name, ip, _ in endpoints],
                     "ports": [{"name": "http", "port": endpoints[0][2]}]}]
                   if endpoints else [])
        body = {"metadata": {"name": rev, "namespace": ns,
                             "labels": {REVISION_LABEL: rev}}, "subsets": subsets}
        try:
            current = self.store.try_get("endpoints", rev, namespace=ns)
            if current is None:
                self.store.create("endpoints", body, namespace=ns)
            else:
                current["subsets"] = subsets
                self.store.update("endpoints", current, namespace=ns)
        except ApiError:
            pass  # namespace closing: nothing to publish
