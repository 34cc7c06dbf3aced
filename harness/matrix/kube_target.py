"""The matrix scenarios' view of any running cluster, through its Kubernetes API.

:class:`KubeTarget` gives :class:`harness.matrix.scenarios._Driver` what
:class:`~harness.matrix.scenarios.EmulatorTarget` reads from the emulator's store, read
over the API instead (ready and existing pods of a namespace, the PodAutoscaler's desired
scale), the predictor's Host header from the InferenceService's status once it is Ready,
the ingress URL it was given and the autoscaler's metrics endpoint when one answers.
Used for the real mutation matrix on the upstream cluster (:mod:`harness.matrix.upstream`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

from harness.errors import UserError

PA_GROUP = ("autoscaling.internal.knative.dev", "v1alpha1", "podautoscalers")
READY_TIMEOUT_S = 180.0


def _ready(pod: dict[str, Any]) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


class KubeTarget:
    """A cluster reached through ``api`` (an official ``ApiClient``), its ingress at
    ``ingress_url``; ``metrics_url``: the autoscaler's Prometheus endpoint (or None)."""

    poll_s = 0.5
    remote = True

    def __init__(self, api: Any, ingress_url: str, metrics_url: str | None) -> None:
        from kubernetes import client as k8s

        self.api = api
        self.ingress_url = ingress_url.rstrip("/")
        self.metrics_url = metrics_url
        self.core = k8s.CoreV1Api(api)
        self.custom = k8s.CustomObjectsApi(api)

    @classmethod
    def connect(cls, api: Any, ingress_url: str) -> KubeTarget:
        """The target with the first autoscaler metrics URL that answers."""
        from harness.kube.client import Kube
        from harness.kube.knative import autoscaler_metrics_urls
        from harness.observe.prometheus import first_reachable

        metrics = first_reachable(autoscaler_metrics_urls(Kube(api)), timeout=1.0)
        return cls(api, ingress_url, metrics)

    def _pods(self, ns: str) -> list[dict[str, Any]]:
        # as JSON: the client's models refuse some valid pods (an httpGet probe's port)
        r = self.core.list_namespaced_pod(ns, _preload_content=False)
        return list(json.loads(r.data)["items"])

    def ready_pods(self, ns: str) -> int:
        return sum(1 for p in self._pods(ns) if _ready(p))

    def pods(self, ns: str) -> int:
        return len(self._pods(ns))

    def desired(self, ns: str, rev: str) -> int | None:
        from kubernetes.client.exceptions import ApiException

        try:
            pa = self.custom.get_namespaced_custom_object(PA_GROUP[0], PA_GROUP[1], ns,
                                                          PA_GROUP[2], rev)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        d = (pa.get("status") or {}).get("desiredScale")
        return None if d is None else int(d)

    async def routed(self, api: Any, name: str, ns: str) -> str:
        """The predictor's Host header once the InferenceService is Ready."""
        from harness.kube.client import Kube
        from harness.kube.wait import wait_isvc_ready

        obj = await asyncio.to_thread(wait_isvc_ready, Kube(api), name, ns,
                                      timeout=READY_TIMEOUT_S)
        status = obj.get("status") or {}
        url = ((status.get("components") or {}).get("predictor") or {}).get("url") \
            or status.get("url")
        host = urlsplit(str(url or "")).hostname
        if not host:
            raise UserError(f"InferenceService {ns}/{name} is Ready without a URL")
        return host
