"""The real control plane against kubectl and the real scheduler: the pinned version, the
nodes the node agent registers and keeps alive, server-side validation, Deployments through
the real controllers, ErrImagePull for an image not in the table, GPU placement with the
scheduler's own Pending message, and namespace deletion."""

from __future__ import annotations

import datetime as dt
import sys
import uuid
from typing import Any

import pytest
import yaml
from upstream_run import until as _until

GPU_CLASS = "gpu.nvidia.com/class"
PAUSE = "registry.k8s.io/pause:3.10"



@pytest.fixture
def namespace(upstream: Any) -> Any:
    name = f"hx-up-{uuid.uuid4().hex[:8]}"
    upstream.kubectl("create", "namespace", name)
    yield name
    upstream.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")


def deployment(name: str, image: str, replicas: int, **pod: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": image}
    container.update(pod.pop("container", {}))
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [container], **pod}}}}


def pods(upstream: Any, ns: str, app: str) -> list[dict[str, Any]]:
    return upstream.json("get", "pods", "-n", ns, "-l", f"app={app}")["items"]


def test_version_is_the_pinned_release(upstream: Any) -> None:
    version = upstream.json("version")["serverVersion"]
    assert version["gitVersion"] == "v1.34.0"
    assert (version["major"], version["minor"]) == ("1", "34")


def test_nodes_are_registered_ready_with_gpu_classes(upstream: Any) -> None:
    nodes = {n["metadata"]["name"]: n for n in upstream.json("get", "nodes")["items"]}
    assert set(nodes) == {"cpu-1", "cpu-2", "gpu-rtx5000-1", "gpu-a100-1"}
    a100 = nodes["gpu-a100-1"]
    assert a100["metadata"]["labels"][GPU_CLASS] == "A100_PCIE_80GB"
    assert a100["status"]["allocatable"]["nvidia.com/gpu"] == "8"
    assert nodes["gpu-rtx5000-1"]["status"]["capacity"]["nvidia.com/gpu"] == "4"
    for node in nodes.values():
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True"
    lease = upstream.json("get", "lease", "-n", "kube-node-lease", "cpu-1")
    renewed = dt.datetime.fromisoformat(lease["spec"]["renewTime"].replace("Z", "+00:00"))
    assert (dt.datetime.now(dt.UTC) - renewed).total_seconds() < 30
    assert lease["metadata"]["ownerReferences"][0]["uid"] == nodes["cpu-1"]["metadata"]["uid"]


def test_apply_validates_on_the_server(upstream: Any, namespace: str) -> None:
    bad = deployment("bad", "harness-modelserver:0.1.0", 1)
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Never"
    proc = upstream.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(bad),
                            check=False)
    assert proc.returncode != 0
    assert 'unknown field "spec.template.spec.containers[0].imagePullPolcy"' in proc.stderr


def test_image_missing_from_the_table_is_err_image_pull(upstream: Any,
                                                        namespace: str) -> None:
    manifest = deployment("nope", "registry.invalid/nothing:1", 2)
    upstream.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))

    def pulled() -> list[dict[str, Any]]:
        found = pods(upstream, namespace, "nope")
        waiting = [p for p in found if p.get("status", {}).get("containerStatuses")]
        return waiting if len(waiting) == 2 else []

    for pod in _until("ErrImagePull on both replicas", pulled):
        assert pod["spec"]["nodeName"] in ("cpu-1", "cpu-2")  # GPU nodes are tainted
        state = pod["status"]["containerStatuses"][0]["state"]["waiting"]
        assert state["reason"] == "ErrImagePull"
        assert "fixtures/nodeagent/images.yaml" in state["message"]
        assert pod["status"]["phase"] == "Pending"
    events = upstream.json("get", "events", "-n", namespace,
                           "--field-selector", "reason=Failed")["items"]
    assert any(e["source"]["component"] == "kubelet" and "registry.invalid/nothing:1"
               in e["message"] for e in events)


@pytest.mark.parametrize(("gpu_class", "node", "capacity"), [
    ("A100_PCIE_80GB", "gpu-a100-1", 8), ("Quadro_RTX_5000", "gpu-rtx5000-1", 4)])
def test_real_scheduler_places_gpu_pods_by_class(upstream: Any, namespace: str,
                                                 gpu_class: str, node: str,
                                                 capacity: int) -> None:
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": GPU_CLASS, "operator": "In", "values": [gpu_class]}]}]}}}
    manifest = deployment(
        "gpu", PAUSE, capacity + 1, affinity=affinity,
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        container={"resources": {"limits": {"nvidia.com/gpu": "1"}}})
    upstream.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))

    def settled() -> list[dict[str, Any]]:
        found = pods(upstream, namespace, "gpu")
        done = [p for p in found if p["spec"].get("nodeName") or any(
            c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable"
            for c in p.get("status", {}).get("conditions", []))]
        return found if len(found) == capacity + 1 and len(done) == len(found) else []

    found = _until("every GPU pod bound or unschedulable", settled)
    bound = [p["spec"]["nodeName"] for p in found if p["spec"].get("nodeName")]
    assert bound == [node] * capacity
    pending = [p for p in found if not p["spec"].get("nodeName")]
    assert len(pending) == 1
    cond = next(c for c in pending[0]["status"]["conditions"] if c["type"] == "PodScheduled")
    assert cond["status"] == "False" and cond["reason"] == "Unschedulable"
    assert cond["message"].startswith("0/4 nodes are available:")
    assert "1 Insufficient nvidia.com/gpu" in cond["message"]
    assert "3 node(s) didn't match Pod's node affinity/selector" in cond["message"]


def test_namespace_delete_removes_its_bound_pods(upstream: Any) -> None:
    name = f"hx-up-{uuid.uuid4().hex[:8]}"
    upstream.kubectl("create", "namespace", name)
    manifest = deployment("web", PAUSE, 3)
    upstream.kubectl("apply", "-n", name, "-f", "-", input=yaml.safe_dump(manifest))
    ready_pods(upstream, name, "web", 3)
    sleepers = {pid for pid, cmd in run_pids(upstream).items() if "sleep\0infinity" in cmd}
    assert len(sleepers) >= 3
    upstream.kubectl("delete", "namespace", name, "--timeout=90s", timeout=120)
    proc = upstream.kubectl("get", "namespace", name, check=False)
    assert proc.returncode != 0 and "NotFound" in proc.stderr
    assert not sleepers & set(run_pids(upstream))  # every process of the namespace ended


MODEL = "harness-modelserver:0.1.0"


def model_server(name: str, replicas: int) -> list[dict[str, Any]]:
    manifest = deployment(name, MODEL, replicas, terminationGracePeriodSeconds=5, container={
        "ports": [{"name": "http", "containerPort": 8080}],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "PORT", "value": "8080"}],
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": "http"},
                           "periodSeconds": 1},
        "livenessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 5}})
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
               "spec": {"selector": {"app": name},
                        "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
    return [manifest, service]


def netns_of(upstream: Any, pod: dict[str, Any]) -> str:
    """The pod's network namespace (harness.nodeagent.network's naming)."""
    index = int(pod["status"]["podIP"].split(".")[2]) * 256 + int(
        pod["status"]["podIP"].split(".")[3])
    return f"hxp{upstream.state['run_id']}-{index:x}"


def run_pids(upstream: Any) -> dict[int, str]:
    from harness.upstream.sweep import run_processes

    out = {}
    for pid, (run, _owner) in run_processes().items():
        if run == upstream.state["run_id"]:
            try:
                out[pid] = open(f"/proc/{pid}/cmdline", "rb").read().decode()
            except OSError:
                pass
    return out


def model_pids(upstream: Any) -> set[int]:
    return {pid for pid, cmd in run_pids(upstream).items() if "modelserver" in cmd}


def ready_pods(upstream: Any, ns: str, app: str, n: int) -> list[dict[str, Any]]:
    def ready() -> list[dict[str, Any]]:
        found = [p for p in pods(upstream, ns, app) if not p["metadata"].get(
            "deletionTimestamp") and any(c["type"] == "Ready" and c["status"] == "True"
                                         for c in p.get("status", {}).get("conditions", []))]
        return found if len(found) == n else []
    return _until(f"{n} Ready pods of {app}", ready, timeout=120)


def test_model_server_deployment_serves_from_every_replica(upstream: Any) -> None:
    import subprocess

    ns = f"hx-up-{uuid.uuid4().hex[:8]}"
    upstream.kubectl("create", "namespace", ns)
    try:
        docs = "---\n".join(yaml.safe_dump(d) for d in model_server("model", 2))
        upstream.kubectl("apply", "-n", ns, "-f", "-", input=docs)
        replicas = ready_pods(upstream, ns, "model", 2)
        upstream.kubectl("rollout", "status", "-n", ns, "deployment/model", "--timeout=60s")
        # the real endpoint controllers publish both replicas' addresses (eventually: the
        # EndpointSlice controller syncs a Service after its pods' Ready changes, not with it)
        want = {p["status"]["podIP"] for p in replicas}

        def published() -> set[str]:
            slices = upstream.json("get", "endpointslices", "-n", ns, "-l",
                                   "kubernetes.io/service-name=model")["items"]
            ready = {a for s in slices for e in s.get("endpoints") or [] for a in e["addresses"]
                     if e["conditions"].get("ready")}
            return ready if ready == want else set()
        addresses = _until(f"EndpointSlice with the ready addresses {sorted(want)}", published,
                           timeout=30)
        for ip in addresses:
            assert ip.startswith("198.18.")
        # another pod asks each endpoint; each answer names its replica
        upstream.kubectl("apply", "-n", ns, "-f", "-",
                         input=yaml.safe_dump(model_server("client", 1)[0]))
        client = ready_pods(upstream, ns, "client", 1)[0]
        # through CoreDNS (the Service's name) and kube-proxy (its ClusterIP)
        script = ("import urllib.request as u\nseen = set()\nfor _ in range(40):\n"
                  f"    r = u.urlopen('http://model.{ns}.svc.cluster.local/', timeout=5)\n"
                  "    seen.add(r.headers['X-Pod-Name'])\n"
                  "    if len(seen) == 2: break\nprint(' '.join(sorted(seen)))\n")
        out = subprocess.run(["ip", "netns", "exec", netns_of(upstream, client),
                              sys.executable, "-c", script],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert set(out.stdout.split()) == {p["metadata"]["name"] for p in replicas}
        # kubectl logs: the API server reaches the node agent's log endpoint
        logs = upstream.kubectl("logs", "-n", ns, replicas[0]["metadata"]["name"]).stdout
        assert "modelserver listening on" in logs
        # scale up and down: the removed replicas' processes are gone
        before = model_pids(upstream)
        upstream.kubectl("scale", "-n", ns, "deployment/model", "--replicas=3")
        ready_pods(upstream, ns, "model", 3)
        assert len(model_pids(upstream)) == len(before) + 1
        upstream.kubectl("scale", "-n", ns, "deployment/model", "--replicas=1")
        _until("2 replicas gone", lambda: len(pods(upstream, ns, "model")) == 1, timeout=60)
        _until("their processes gone", lambda: len(model_pids(upstream)) == len(before) - 1,
               timeout=30)
    finally:
        upstream.kubectl("delete", "namespace", ns, "--timeout=120s", timeout=150)
    # the namespace's deletion ends every process it had
    _until("no model server left", lambda: not model_pids(upstream), timeout=30)


def test_the_kube_suite_passes_against_the_upstream_cluster(upstream: Any) -> None:
    """tests/kube (client, watch, apply, wait, namespaces, gc) on this cluster; the tests
    that drive the emulator's fault injection or store skip themselves there."""
    import os
    import re
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/kube"],
        cwd=root, capture_output=True, text=True, timeout=600,
        env={**os.environ, "HARNESS_KUBE_KUBECONFIG": str(upstream.kubeconfig)})
    summary = proc.stdout.strip().splitlines()[-1]
    print(summary)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert int(re.search(r"(\d+) passed", summary).group(1)) >= 10
