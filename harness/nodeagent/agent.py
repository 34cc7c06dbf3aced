"""The node agent: our kubelet replacement for the upstream cluster.

It registers each node of the cluster file (the emulator's nodes: CPU and GPU, with
``gpu.nvidia.com/class`` labels, taints and ``nvidia.com/gpu`` capacity; the Node object is
:func:`harness.emulator.cluster_config.node_object`, shared with the emulator), then keeps
every node alive the way a kubelet does since 1.17: its Lease ``kube-node-lease/<node>``
renewed every :data:`RENEW_S` (a quarter of ``leaseDurationSeconds``, as kubelet and kwok),
its status (Ready and the pressure conditions' heartbeat) posted every
:data:`STATUS_S`. The controller manager's node lifecycle controller reads both; a node
whose lease goes stale turns NotReady after its 50 s grace.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import httpx

from harness.emulator.cluster_config import ClusterConfig, node_object
from harness.objects import format_time

LEASE_S = 40
RENEW_S = 10.0
STATUS_S = 60.0
AGENT_VERSION = "v1.34.0-harness-nodeagent"
RUN_LABEL = "harness.kserve.dev/upstream-run"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _micro(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_for_agent(spec: Any, run_id: str, now: str, address: str,
                   port: int = 0) -> dict[str, Any]:
    """The Node this agent registers: the emulator's node, with this agent's version and
    the port of its log server (kubelet's endpoint, which ``kubectl logs`` reaches)."""
    node = node_object(spec, now)
    if port:
        node["status"]["daemonEndpoints"] = {"kubeletEndpoint": {"Port": port}}
    node["metadata"]["labels"][RUN_LABEL] = run_id
    node["status"]["addresses"] = [{"type": "InternalIP", "address": address},
                                   {"type": "Hostname", "address": spec.name}]
    node["status"]["nodeInfo"].update(kubeletVersion=AGENT_VERSION,
                                      containerRuntimeVersion="harness://process",
                                      osImage="harness node agent")
    node["status"].pop("phase", None)
    return node


class NodeAgent:
    """Registers the nodes and keeps their Leases and status fresh, on one thread."""

    def __init__(self, client: httpx.Client, cluster: ClusterConfig, *, run_id: str,
                 address: str = "127.0.0.1", port: int = 0) -> None:
        self.client = client
        self.port = port
        self.cluster = cluster
        self.run_id = run_id
        self.address = address
        self.uids: dict[str, str] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="node-agent", daemon=True)

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.cluster.nodes]

    def start(self) -> NodeAgent:
        self.register()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=15)

    # ------------------------------------------------------------ registration

    def register(self) -> None:
        now = format_time()
        for spec in self.cluster.nodes:
            body = node_for_agent(spec, self.run_id, now, self.address, self.port)
            r = self.client.post("/api/v1/nodes", json=body)
            if r.status_code == 409:  # left by an earlier agent of this cluster: adopt it
                r = self.client.get(f"/api/v1/nodes/{spec.name}")
            r.raise_for_status()
            self.uids[spec.name] = r.json()["metadata"]["uid"]
            self.post_status(spec.name)
            self.renew_lease(spec.name)

    def post_status(self, name: str) -> None:
        spec = next(n for n in self.cluster.nodes if n.name == name)
        now = format_time()
        status = node_for_agent(spec, self.run_id, now, self.address, self.port)["status"]
        r = self.client.patch(f"/api/v1/nodes/{name}/status", json={"status": status},
                              headers={"Content-Type": "application/strategic-merge-patch+json"})
        r.raise_for_status()

    def renew_lease(self, name: str) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
        now = _micro(_now())
        r = self.client.get(path)
        if r.status_code == 404:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": name, "namespace": "kube-node-lease",
                                 "ownerReferences": [{"apiVersion": "v1", "kind": "Node",
                                                      "name": name, "uid": self.uids[name]}]},
                    "spec": {"holderIdentity": name, "leaseDurationSeconds": LEASE_S,
                             "renewTime": now}}
            r = self.client.post(
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", json=body)
        else:
            r.raise_for_status()
            lease = r.json()
            lease["spec"].update(holderIdentity=name, leaseDurationSeconds=LEASE_S,
                                 renewTime=now)
            r = self.client.put(path, json=lease)
        r.raise_for_status()

    # ------------------------------------------------------------ loop

    def _run(self) -> None:
        last_status = _now()
        while not self._stop.wait(RENEW_S):
            post = (_now() - last_status).total_seconds() >= STATUS_S
            for name in self.node_names:
                try:
                    self.renew_lease(name)
                    if post:
                        self.post_status(name)
                except httpx.HTTPError as exc:
                    self.errors = [*self.errors[-20:], f"{name}: {exc}"]
            if post:
                last_status = _now()

    def all_ready(self) -> bool:
        """Every node is registered and Ready as the API server reports it."""
        try:
            r = self.client.get("/api/v1/nodes", params={"labelSelector":
                                                         f"{RUN_LABEL}={self.run_id}"})
            r.raise_for_status()
        except httpx.HTTPError:
            return False
        ready = {n["metadata"]["name"] for n in r.json()["items"]
                 if any(c["type"] == "Ready" and c["status"] == "True"
                        for c in n.get("status", {}).get("conditions", []))}
        return ready >= set(self.node_names)
