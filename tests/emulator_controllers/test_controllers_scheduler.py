"""The scheduler's filters (node selector, affinity operators, taints, resource fit) and
the GPU example end to end through the KServe, Knative and Deployment controllers."""

from __future__ import annotations

import asyncio
import copy
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.emulator.api.process import populate
from harness.emulator.api.store import Store
from harness.emulator.cluster_config import load_cluster_config
from harness.emulator.controllers.deployments import DeploymentController
from harness.emulator.controllers.knative import KnativeController
from harness.emulator.controllers.kserve import KServeController
from harness.emulator.controllers.scheduler import (
    Scheduler,
    affinity_matches,
    choose_node,
    filter_node,
    tolerates,
    usage_by_node,
)

ROOT = Path(__file__).resolve().parents[2]
GPU_ISVC = ROOT / "fixtures" / "isvc" / "gpu-rtx5000.yaml"


def node(name: str, labels: dict[str, str] | None = None, *, taints: list[Any] | None = None,
         alloc: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"taints": taints} if taints else {},
            "status": {"allocatable": alloc or {"cpu": "4", "memory": "8Gi", "pods": "10"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def pod(*, selector: dict[str, str] | None = None, exprs: list[Any] | None = None,
        tolerations: list[Any] | None = None, requests: dict[str, str] | None = None,
        limits: dict[str, str] | None = None, node_name: str | None = None
        ) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "resources": {
        "requests": requests or {}, "limits": limits or {}}}]}
    if selector:
        spec["nodeSelector"] = selector
    if exprs is not None:
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                                             {"nodeSelectorTerms": [{"matchExpressions":
                                                                     exprs}]}}}
    if tolerations:
        spec["tolerations"] = tolerations
    if node_name:
        spec["nodeName"] = node_name
    return {"metadata": {"name": "p", "namespace": "ns"}, "spec": spec, "status": {}}


@pytest.mark.parametrize(("op", "values", "labels", "ok"), [
    ("In", ["a", "b"], {"k": "a"}, True),
    ("In", ["a"], {"k": "c"}, False),
    ("In", ["a"], {}, False),
    ("NotIn", ["a"], {"k": "b"}, True),
    ("NotIn", ["a"], {}, True),
    ("NotIn", ["a"], {"k": "a"}, False),
    ("Exists", [], {"k": ""}, True),
    ("Exists", [], {}, False),
    ("DoesNotExist", [], {}, True),
    ("DoesNotExist", [], {"k": "x"}, False),
    ("Gt", ["4"], {"k": "5"}, True),
    ("Gt", ["4"], {"k": "4"}, False),
    ("Gt", ["4"], {"k": "x"}, False),
    ("Lt", ["4"], {"k": "3"}, True),
    ("Lt", ["4"], {}, False),
])
def test_affinity_operators(op: str, values: list[str], labels: dict[str, str],
                            ok: bool) -> None:
    expr = {"key": "k", "operator": op, "values": values}
    assert affinity_matches(pod(exprs=[expr]), node("n", labels)) is ok


def test_affinity_terms_or_expressions_and_selector_and() -> None:
    n = node("n", {"a": "1", "b": "2"})
    p = pod(exprs=[{"key": "a", "operator": "In", "values": ["1"]},
                   {"key": "b", "operator": "In", "values": ["3"]}])
    assert not affinity_matches(p, n)
    terms = p["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    terms.append({"matchExpressions": [{"key": "b", "operator": "Exists"}]})
    assert affinity_matches(p, n)
    p["spec"]["nodeSelector"] = {"a": "2"}
    assert not affinity_matches(p, n)
    assert not affinity_matches(pod(exprs=[]), n)  # an empty term matches nothing


def test_taints_and_tolerations() -> None:
    taint = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    n = node("g", taints=[taint])
    assert filter_node(pod(), n, {}) == "node(s) had untolerated taint {nvidia.com/gpu: present}"
    assert tolerates({"key": "nvidia.com/gpu", "operator": "Exists"}, taint)
    assert tolerates({"operator": "Exists"}, taint)
    assert not tolerates({"key": "nvidia.com/gpu", "value": "other"}, taint)
    assert not tolerates({"key": "nvidia.com/gpu", "operator": "Exists",
                          "effect": "NoExecute"}, taint)
    assert filter_node(pod(tolerations=[{"key": "nvidia.com/gpu", "operator": "Equal",
                                         "value": "present"}]), n, {}) is None
    soft = node("s", taints=[{"key": "x", "effect": "PreferNoSchedule"}])
    assert filter_node(pod(), soft, {}) is None


def test_resource_fit_counts_running_pods_and_gpus() -> None:
    n = node("g", alloc={"cpu": "4", "memory": "8Gi", "pods": "10", "nvidia.com/gpu": "2"})
    gpu = pod(limits={"nvidia.com/gpu": "1"}, requests={"cpu": "500m"})
    placed = [dict(gpu, spec={**gpu["spec"], "nodeName": "g"}) for _ in range(2)]
    used = usage_by_node(placed)
    assert filter_node(gpu, n, {}) is None
    assert filter_node(gpu, n, used["g"]) == "Insufficient nvidia.com/gpu"
    assert filter_node(pod(requests={"cpu": "5"}), n, {}) == "Insufficient cpu"
    assert filter_node(pod(requests={"memory": "9Gi"}), n, {}) == "Insufficient memory"
    cpu_only = node("c")
    assert filter_node(gpu, cpu_only, {}) == "Insufficient nvidia.com/gpu"
    name, msg = choose_node(gpu, [n, cpu_only], {"g": used["g"]})
    assert name is None
    assert msg.startswith("0/2 nodes are available: 2 Insufficient nvidia.com/gpu.")
    assert choose_node(gpu, [n, cpu_only], {})[0] == "g"


def test_ignore_affinity_fault() -> None:
    n = node("n", {"k": "other"})
    p = pod(exprs=[{"key": "k", "operator": "In", "values": ["want"]}])
    assert filter_node(p, n, {}) is not None
    assert filter_node(p, n, {}, ignore_affinity=True) is None


async def _run_until(controllers: list[Any], done: Any, timeout: float) -> None:
    for c in controllers:
        await c.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("controllers did not converge in time")
    finally:
        for c in controllers:
            await c.stop()


def test_gpu_example_lands_on_its_class_and_the_next_pod_stays_pending() -> None:
    store = Store(graceful_pods=True)
    populate(store, load_cluster_config())
    isvc = yaml.safe_load(GPU_ISVC.read_text())
    pred = isvc["spec"]["predictor"]
    pred["minReplicas"] = pred["maxReplicas"] = 5  # 4 RTX 5000 GPUs in the cluster
    store.create("serving.kserve.io/inferenceservices", copy.deepcopy(isvc),
                 namespace="default")
    controllers = [KServeController(store), KnativeController(store),
                   DeploymentController(store), Scheduler(store)]

    def settled() -> bool:
        pods = store.list("pods", namespace="default")["items"]
        events = store.list("events", namespace="default",
                            field_selector="reason=FailedScheduling")["items"]
        return len(pods) == 5 and bool(events)

    asyncio.run(_run_until(controllers, settled, 15.0))
    pods = store.list("pods", namespace="default")["items"]
    bound = [p for p in pods if p["spec"].get("nodeName")]
    pending = [p for p in pods if not p["spec"].get("nodeName")]
    assert len(bound) == 4 and len(pending) == 1
    assert {p["spec"]["nodeName"] for p in bound} == {"gpu-rtx5000-1"}
    labels = bound[0]["metadata"]["labels"]
    assert labels["serving.kserve.io/inferenceservice"] == "gpu-rtx5000"
    assert labels["component"] == "predictor"
    assert labels["serving.knative.dev/revision"] == "gpu-rtx5000-predictor-00001"
    cond = next(c for c in pending[0]["status"]["conditions"] if c["type"] == "PodScheduled")
    assert cond["status"] == "False" and cond["reason"] == "Unschedulable"
    (event,) = store.list("events", namespace="default",
                          field_selector="reason=FailedScheduling")["items"]
    assert event["type"] == "Warning"
    assert event["involvedObject"]["name"] == pending[0]["metadata"]["name"]
    msg = event["message"]
    assert msg.startswith("0/4 nodes are available:"), msg
    assert "1 Insufficient nvidia.com/gpu" in msg
    assert "3 node(s) didn't match Pod's node affinity/selector" in msg


def test_gpu_example_without_affinity_fault_may_land_elsewhere() -> None:
    """The ignore-affinity switch makes the check above fail: pods reach the A100 node."""
    store = Store(graceful_pods=True)
    populate(store, load_cluster_config())
    isvc = yaml.safe_load(GPU_ISVC.read_text())
    isvc["spec"]["predictor"]["minReplicas"] = isvc["spec"]["predictor"]["maxReplicas"] = 6
    store.create("serving.kserve.io/inferenceservices", isvc, namespace="default")
    controllers = [KServeController(store), KnativeController(store),
                   DeploymentController(store), Scheduler(store, ignore_affinity=True)]

    def settled() -> bool:
        pods = store.list("pods", namespace="default")["items"]
        return len(pods) == 6 and all(p["spec"].get("nodeName") for p in pods)

    asyncio.run(_run_until(controllers, settled, 15.0))
    nodes = {p["spec"]["nodeName"] for p in store.list("pods", namespace="default")["items"]}
    assert "gpu-a100-1" in nodes
