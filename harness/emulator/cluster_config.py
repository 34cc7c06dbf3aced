"""The emulated cluster's declared nodes: load ``fixtures/emulator/cluster.yaml``
(validated against ``fixtures/schemas/cluster.schema.json``) and turn each entry into a
Ready ``Node`` object with labels, taints, capacity and allocatable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.files import check_schema, data_path, load_schema, read_yaml

DEFAULT_CLUSTER = data_path("fixtures", "emulator", "cluster.yaml")


@dataclass(frozen=True)
class NodeSpec:
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[dict[str, str], ...] = ()
    allocatable: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterConfig:
    name: str
    nodes: tuple[NodeSpec, ...]


def load_cluster_config(path: str | Path | None = None) -> ClusterConfig:
    """Read and validate a cluster file; errors name the file and the bad key."""
    path = Path(path) if path is not None else DEFAULT_CLUSTER
    data = read_yaml(path)
    check_schema(data, load_schema("cluster.schema.json"), where=str(path))
    names = [n["name"] for n in data["nodes"]]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserError(f"duplicate node names: {', '.join(dupes)}", where=str(path),
                        key="nodes")
    return ClusterConfig(
        name=data.get("name", "harness-local"),
        nodes=tuple(NodeSpec(name=n["name"], labels=dict(n.get("labels") or {}),
                             taints=tuple(n.get("taints") or ()),
                             allocatable=dict(n["allocatable"])) for n in data["nodes"]))


def node_object(spec: NodeSpec, now: str) -> dict[str, Any]:
    """A Ready Node as a kubelet would register it."""
    allocatable = dict(spec.allocatable)
    allocatable.setdefault("pods", "110")
    labels = {"kubernetes.io/hostname": spec.name, "kubernetes.io/os": "linux",
              "kubernetes.io/arch": "amd64", **spec.labels}
    node_spec: dict[str, Any] = {}
    if spec.taints:
        node_spec["taints"] = [dict(t) for t in spec.taints]
    conditions = [
        {"type": t, "status": "False", "reason": f"Kubelet Has No {t[:-8]} Pressure".replace(
            " ", ""), "lastHeartbeatTime": now, "lastTransitionTime": now}
        for t in ("MemoryPressure", "DiskPressure", "PIDPressure")]
    conditions.append({"type": "Ready", "status": "True", "reason": "KubeletReady",
                       "message": "kubelet is posting ready status",
                       "lastHeartbeatTime": now, "lastTransitionTime": now})
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": spec.name, "labels": labels},
        "spec": node_spec,
        "status": {
            "capacity": dict(allocatable), "allocatable": allocatable,
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                          {"type": "Hostname", "address": spec.name}],
            "nodeInfo": {"kubeletVersion": "v1.32.0-harness-emulator",
                         "containerRuntimeVersion": "harness://local", "osImage": "emulated",
                         "operatingSystem": "linux", "architecture": "amd64",
                         "kernelVersion": "", "kubeProxyVersion": "", "machineID": "",
                         "systemUUID": "", "bootID": ""},
            "phase": "Running",
        },
    }
