"""On a live emulated cluster, as a user sees it with kubectl: ReplicaSets and rollout
history of a predictor's Deployment, the ServerlessService flipping between Proxy and
Serve (the activator in or out of the path), a ``config-autoscaler`` change reaching a
running revision (and the recorder's view of it), and a KServe canary rollout splitting
2,000 requests 20/80 with each revision scaling on its own share."""

from __future__ import annotations

import asyncio
import collections
import copy
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from harness.emulator.local_cluster import LocalCluster
from harness.kube.client import Kube, load_api_client
from harness.observe.recorder import DEFAULT_KINDS, Recorder

ROOT = Path(__file__).resolve().parents[2]
ISVC = ROOT / "fixtures" / "isvc" / "cpu-small.yaml"
KUBECTL = str(ROOT / ".venv" / "bin" / "kubectl")
NS = "default"
ISVC_API = ("serving.kserve.io/inferenceservices", NS)
SKS = "networking.internal.knative.dev/serverlessservices"
BODY = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32",
                    "data": [1, 2, 3, 4]}]}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240),
              pytest.mark.skipif(not os.access(KUBECTL, os.X_OK), reason="no kubectl")]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCluster, Path]]:
    with LocalCluster(profile="fast") as c:
        yield c, c.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")


def kubectl(kubeconfig: Path, *args: str) -> str:
    out = subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), "-n", NS, *args],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def wait(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def isvc(name: str, **predictor: Any) -> dict[str, Any]:
    body = yaml.safe_load(ISVC.read_text())
    body["metadata"]["name"] = name
    body["spec"]["predictor"].update(predictor)
    return body


def ready(c: LocalCluster, name: str) -> bool:
    obj = c.store.try_get(*ISVC_API[:1], name, namespace=NS) or {}
    return any(x["type"] == "Ready" and x["status"] == "True"
               for x in (obj.get("status") or {}).get("conditions") or [])


def infer_path(c: LocalCluster, name: str) -> str:
    """The v2 path the model server answers (its model name)."""
    for path in (f"/v2/models/{name}/infer", "/v2/models/linear/infer"):
        r = httpx.post(c.ingress_url + path, json=BODY,
                       headers={"Host": c.host_for(name, NS)}, timeout=60)
        if r.status_code == 200:
            return path
    raise AssertionError(f"no inference path answers for {name}: {r.status_code} {r.text}")


async def fire(c: LocalCluster, name: str, path: str, total: int, workers: int,
               seconds: float = 120.0) -> list[httpx.Response]:
    out: list[httpx.Response] = []
    deadline = time.monotonic() + seconds
    host = c.host_for(name, NS)

    async def worker(client: httpx.AsyncClient) -> None:
        while len(out) < total and time.monotonic() < deadline:
            out.append(await client.post(c.ingress_url + path, json=BODY,
                                         headers={"Host": host}))

    async with httpx.AsyncClient(timeout=60.0) as client:
        await asyncio.gather(*(worker(client) for _ in range(workers)))
    return out[:total]


def test_replicasets_rollout_history_and_sks_as_kubectl_shows_them(
        cluster: tuple[LocalCluster, Path]) -> None:
    c, kubeconfig = cluster
    c.store.create(ISVC_API[0], isvc("rs-demo", minReplicas=1, maxReplicas=2), namespace=NS)
    wait(lambda: ready(c, "rs-demo"), 60, "rs-demo Ready")
    dep = "rs-demo-predictor-00001-deployment"
    rs_list = json.loads(kubectl(kubeconfig, "get", "rs", "-o", "json",
                                 "-l", "serving.knative.dev/revision=rs-demo-predictor-00001"))
    (rs,) = rs_list["items"]
    thash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"{dep}-{thash}"
    assert set(thash) <= set("bcdfghjklmnpqrstvwxz2456789")
    (ref,) = rs["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["name"], ref["controller"], ref["blockOwnerDeletion"]) == (
        "Deployment", dep, True, True)
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert rs["spec"]["selector"]["matchLabels"]["pod-template-hash"] == thash
    assert rs["status"]["readyReplicas"] == 1
    pods = c.store.list("pods", namespace=NS,
                        label_selector=f"pod-template-hash={thash}")["items"]
    assert len(pods) == 1 and pods[0]["metadata"]["name"].startswith(f"{dep}-{thash}-")
    assert pods[0]["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"

    history = kubectl(kubeconfig, "rollout", "history", f"deploy/{dep}")
    assert f"deployment.apps/{dep}" in history
    assert [ln.split()[0] for ln in history.splitlines()[2:] if ln.strip()] == ["1"]

    shown = kubectl(kubeconfig, "get", "rs,sks")
    rs_head, rs_row, _, sks_head, sks_row = [ln.split() for ln in shown.splitlines()
                                             if "rs-demo" in ln or "NAME" in ln or not ln]
    assert rs_head == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert rs_row[:4] == [f"replicaset.apps/{dep}-{thash}", "1", "1", "1"]
    assert sks_head == ["NAME", "MODE", "ACTIVATORS", "SERVICENAME", "PRIVATESERVICENAME",
                        "READY", "REASON"]
    assert sks_row[:6] == [
        "serverlessservice.networking.internal.knative.dev/rs-demo-predictor-00001", "Proxy",
        sks_row[2], "rs-demo-predictor-00001", "rs-demo-predictor-00001-private", "True"]
    sks = json.loads(kubectl(kubeconfig, "get", "sks", "rs-demo-predictor-00001", "-o", "json"))
    # the default target-burst-capacity (200) exceeds one pod's capacity: Proxy with a pod
    assert sks["spec"]["mode"] == "Proxy" and sks["spec"]["numActivators"] >= 2
    assert sks["status"]["privateServiceName"] == "rs-demo-predictor-00001-private"
    private = c.store.get("endpoints", "rs-demo-predictor-00001-private", namespace=NS)
    assert len(private["subsets"][0]["addresses"]) == 1
    public = c.store.get("endpoints", "rs-demo-predictor-00001", namespace=NS)
    assert public["subsets"][0]["ports"][0]["port"] == c.ingress.port  # the activator
    assert c.ingress.proxy_mode(NS, "rs-demo-predictor-00001")
    kubectl(kubeconfig, "delete", "isvc", "rs-demo")
    wait(lambda: not c.store.list("apps/replicasets", namespace=NS,
                                  label_selector=f"pod-template-hash={thash}")["items"],
         30, "the ReplicaSet to go with its owners")


def _public_port(c: LocalCluster, rev: str) -> int | None:
    ep = c.store.try_get("endpoints", rev, namespace=NS) or {}
    subsets = ep.get("subsets") or []
    return subsets[0]["ports"][0]["port"] if subsets else None


def test_sks_flips_serve_after_scale_from_zero_and_proxy_at_zero_then_live_config(
        cluster: tuple[LocalCluster, Path]) -> None:
    c, kubeconfig = cluster
    rev = "sks-demo-predictor-00001"
    c.store.create(ISVC_API[0], isvc(
        "sks-demo", minReplicas=0, maxReplicas=1, annotations={
            "autoscaling.knative.dev/target-burst-capacity": "0"}), namespace=NS)
    wait(lambda: ready(c, "sks-demo"), 60, "sks-demo Ready")

    def mode() -> str:
        return str(c.store.get(SKS, rev, namespace=NS)["spec"]["mode"])

    wait(lambda: mode() == "Serve", 20, "Serve with its initial pod (TBC 0)")
    wait(lambda: _public_port(c, rev) not in (None, c.ingress.port), 10, "pod endpoints")
    assert not c.ingress.proxy_mode(NS, rev)
    wait(lambda: c.store.count("pods", NS) == 0 or (mode() == "Proxy" and not [
        p for p in c.store.list("pods", namespace=NS,
                                label_selector=f"serving.knative.dev/revision={rev}")[
            "items"]]), 60, "scale to zero")
    assert mode() == "Proxy"
    assert _public_port(c, rev) == c.ingress.port  # public endpoints = the activator
    assert c.ingress.proxy_mode(NS, rev)
    status = {x["type"]: x for x in c.store.get(SKS, rev, namespace=NS)["status"][
        "conditions"]}
    assert status["ActivatorEndpointsPopulated"]["status"] == "True"
    assert status["Ready"]["reason"] == "NoHealthyBackends"

    path = infer_path(c, "sks-demo")  # a request from zero: buffered, then served
    wait(lambda: mode() == "Serve", 20, "Serve after scale-from-zero")
    wait(lambda: not c.ingress.proxy_mode(NS, rev), 10, "the activator out of the path")
    assert _public_port(c, rev) != c.ingress.port

    # live config-autoscaler: 4x one pod's load (max 1 pod) panics at 200 %, not at 1000 %
    kubectl(kubeconfig, "-n", "knative-serving", "patch", "configmap", "config-autoscaler",
            "--type", "merge", "-p", '{"data":{"panic-threshold-percentage":"1000"}}')
    api, _ = load_api_client(kubeconfig)
    kube = Kube(api)
    rec = Recorder(kube, NS, kinds=(*DEFAULT_KINDS, "config-autoscaler"),
                   metrics_url=c.metrics_url + "/metrics", metrics_interval_s=0.5).start()
    try:
        async def load_and_patch() -> float:
            task = asyncio.create_task(fire(c, "sks-demo", path, 100_000, 4, seconds=16.0))
            await asyncio.sleep(8.0)
            changed = time.time()
            await asyncio.to_thread(
                kubectl, kubeconfig, "-n", "knative-serving", "patch", "configmap",
                "config-autoscaler", "--type", "merge",
                "-p", '{"data":{"panic-threshold-percentage":"200"}}')
            await task
            return changed

        changed = asyncio.run(load_and_patch())
        time.sleep(1.0)
    finally:
        recording = rec.stop()
        kube.close()
    versions = recording.config_changes()
    assert [v["panic-threshold-percentage"] for _, v in versions][-2:] == ["1000", "200"]
    assert abs(versions[-1][0] - changed) < 3.0
    samples = recording.panic_samples(rev) or []
    assert samples, "no panic gauge samples"
    assert all(v == 0.0 for t, v in samples if t < changed)
    assert any(v == 1.0 for t, v in samples if changed < t < changed + 6.0)
    c.store.patch("configmaps", "config-autoscaler", {"data": {
        "panic-threshold-percentage": "200"}}, namespace="knative-serving")


def test_canary_traffic_percent_splits_requests_and_each_revision_scales_on_its_share(
        cluster: tuple[LocalCluster, Path]) -> None:
    c, kubeconfig = cluster
    body = isvc("canary", minReplicas=1, maxReplicas=6, containerConcurrency=4)
    body["spec"]["predictor"]["model"]["env"] = [{"name": "REQUEST_LATENCY", "value": "60ms"}]
    c.store.create(ISVC_API[0], body, namespace=NS)
    wait(lambda: ready(c, "canary"), 60, "canary Ready")
    first = c.store.get(ISVC_API[0], "canary", namespace=NS)
    assert first["status"]["components"]["predictor"]["latestRolledoutRevision"] == \
        "canary-predictor-00001"
    update = copy.deepcopy(first)
    update["spec"]["predictor"]["canaryTrafficPercent"] = 20
    update["spec"]["predictor"]["model"]["env"] = [{"name": "REQUEST_LATENCY",
                                                    "value": "61ms"}]
    c.store.update(ISVC_API[0], update, namespace=NS)

    def split() -> dict[str, int] | None:
        pred = ((c.store.get(ISVC_API[0], "canary", namespace=NS).get("status") or {}).get(
            "components") or {}).get("predictor") or {}
        traffic = {t["revisionName"]: t["percent"] for t in pred.get("traffic") or []}
        return traffic if len(traffic) == 2 else None

    traffic = wait(split, 60, "a 20/80 split")
    assert traffic == {"canary-predictor-00002": 20, "canary-predictor-00001": 80}
    ksvc = c.store.get("serving.knative.dev/services", "canary-predictor", namespace=NS)
    assert ksvc["spec"]["traffic"] == [
        {"latestRevision": True, "percent": 20},
        {"tag": "prev", "revisionName": "canary-predictor-00001", "latestRevision": False,
         "percent": 80}]
    path = infer_path(c, "canary")
    responses = asyncio.run(fire(c, "canary", path, 2000, 12))
    assert len(responses) == 2000 and all(r.status_code == 200 for r in responses)
    # a pod's name is <revision>-deployment-<pod-template-hash>-<5>; pods that served may
    # be gone by now (scaled down), so the revision is read from the name
    counts = collections.Counter(r.headers["X-Pod-Name"].split("-deployment-")[0]
                                 for r in responses)
    share = counts["canary-predictor-00002"] / 2000
    assert abs(share - 0.20) <= 0.03, counts
    assert counts["canary-predictor-00001"] + counts["canary-predictor-00002"] == 2000
    new = c.kpa.scalers[(NS, "canary-predictor-00002")]
    old = c.kpa.scalers[(NS, "canary-predictor-00001")]
    assert new.observed and old.observed
    # each PodAutoscaler saw its own share: the canary's load is about a quarter of the rest
    new_load = max(x[4] for x in new.tick_log)
    old_load = max(x[4] for x in old.tick_log)
    assert 0.1 < new_load / old_load < 0.45, (new_load, old_load)
    assert max(x[2] for x in old.tick_log) > max(x[2] for x in new.tick_log) >= 1

