"""The pinned versions (``fixtures/kind/versions.yaml``) and the kind cluster file.

:func:`load_versions` reads the pins; :func:`load_cluster` reads a kind ``Cluster``
file and names its nodes the way kind does (``<name>-control-plane``, ``<name>-worker``,
``<name>-worker2``, ... in file order, counted per role), so the bring-up can patch the
GPU workers by name. A GPU worker is one labelled ``gpu.nvidia.com/class``; its fake
``nvidia.com/gpu`` count is its ``harness.local/fake-gpus`` label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.files import data_path, read_yaml

GPU_CLASS_LABEL = "gpu.nvidia.com/class"
FAKE_GPUS_LABEL = "harness.local/fake-gpus"
GPU_TAINT = "nvidia.com/gpu=present:NoSchedule"


def kind_dir() -> Path:
    return data_path("fixtures", "kind")


def default_cluster_file() -> Path:
    return kind_dir() / "cluster.yaml"


def default_versions_file() -> Path:
    return kind_dir() / "versions.yaml"


@dataclass(frozen=True, slots=True)
class Versions:
    """Every pinned version and manifest URL of the bring-up."""

    kind: str
    node_image: str
    kubernetes: str
    cert_manager: str
    cert_manager_manifest: str
    knative_serving: str
    knative_crds: str
    knative_core: str
    net_kourier: str
    kourier_manifest: str
    kserve: str
    kserve_manifest: str
    kserve_cluster_resources: str
    kserve_deployment_mode: str
    modelserver_image: str
    modelserver_context: str


def _get(doc: Any, dotted: str, where: str) -> str:
    node = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise UserError("missing key", where=where, key=dotted)
        node = node[part]
    if not isinstance(node, str | int | float) or isinstance(node, bool) or str(node) == "":
        raise UserError("must be a non-empty string", where=where, key=dotted)
    return str(node)


def load_versions(path: Path | None = None) -> Versions:
    """Read ``fixtures/kind/versions.yaml`` (or ``path``); a missing key is a UserError."""
    path = path or default_versions_file()
    doc = read_yaml(path)
    w = str(path)
    return Versions(
        kind=_get(doc, "kind.version", w),
        node_image=_get(doc, "kind.node_image", w),
        kubernetes=_get(doc, "kind.kubernetes", w),
        cert_manager=_get(doc, "cert_manager.version", w),
        cert_manager_manifest=_get(doc, "cert_manager.manifest", w),
        knative_serving=_get(doc, "knative_serving.version", w),
        knative_crds=_get(doc, "knative_serving.crds", w),
        knative_core=_get(doc, "knative_serving.core", w),
        net_kourier=_get(doc, "net_kourier.version", w),
        kourier_manifest=_get(doc, "net_kourier.manifest", w),
        kserve=_get(doc, "kserve.version", w),
        kserve_manifest=_get(doc, "kserve.manifest", w),
        kserve_cluster_resources=_get(doc, "kserve.cluster_resources", w),
        kserve_deployment_mode=_get(doc, "kserve.deployment_mode", w),
        modelserver_image=_get(doc, "modelserver.image", w),
        modelserver_context=_get(doc, "modelserver.context", w),
    )


@dataclass(frozen=True, slots=True)
class KindNode:
    """One node of a kind cluster file, with the name kind will give it."""

    name: str
    role: str
    image: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def gpu_class(self) -> str | None:
        return self.labels.get(GPU_CLASS_LABEL)

    @property
    def fake_gpus(self) -> int:
        return int(self.labels.get(FAKE_GPUS_LABEL, "0"))


def node_names(cluster_name: str, roles: list[str]) -> list[str]:
    """kind's node names for nodes of these roles, in order."""
    seen: dict[str, int] = {}
    names = []
    for role in roles:
        seen[role] = seen.get(role, 0) + 1
        suffix = "" if seen[role] == 1 else str(seen[role])
        names.append(f"{cluster_name}-{role}{suffix}")
    return names


def load_cluster(cluster_name: str, path: Path | None = None) -> list[KindNode]:
    """The nodes of a kind cluster file, named for ``cluster_name``."""
    path = path or default_cluster_file()
    doc = read_yaml(path)
    w = str(path)
    if not isinstance(doc, dict) or doc.get("kind") != "Cluster" \
            or doc.get("apiVersion") != "kind.x-k8s.io/v1alpha4":
        raise UserError("not a kind Cluster (kind: Cluster, apiVersion: "
                        "kind.x-k8s.io/v1alpha4)", where=w)
    raw = doc.get("nodes") or [{"role": "control-plane"}]
    if not isinstance(raw, list) or not all(isinstance(n, dict) for n in raw):
        raise UserError("must be a list of nodes", where=w, key="nodes")
    roles = [str(n.get("role", "")) for n in raw]
    for i, role in enumerate(roles):
        if role not in ("control-plane", "worker"):
            raise UserError("role must be control-plane or worker", where=w,
                            key=f"nodes[{i}].role")
    nodes = []
    for i, (spec, name) in enumerate(zip(raw, node_names(cluster_name, roles), strict=True)):
        labels = {str(k): str(v) for k, v in (spec.get("labels") or {}).items()}
        node = KindNode(name=name, role=roles[i], image=spec.get("image"), labels=labels)
        if node.gpu_class is not None:
            try:
                ok = node.fake_gpus > 0
            except ValueError:
                ok = False
            if not ok:
                raise UserError(f"a GPU worker needs a positive integer {FAKE_GPUS_LABEL}",
                                where=w, key=f"nodes[{i}].labels")
        nodes.append(node)
    return nodes


def gpu_workers(nodes: list[KindNode]) -> list[KindNode]:
    return [n for n in nodes if n.role == "worker" and n.gpu_class is not None]
