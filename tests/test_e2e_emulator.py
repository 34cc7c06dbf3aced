"""End to end on the emulated cluster: deploy the small CPU InferenceService with the
kubernetes client, serve through the ingress with httpx, scale up under load, down to
zero after the fast profile's retention, and answer a cold start from zero."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from harness.emulator.local_cluster import LocalCluster

ROOT = Path(__file__).resolve().parents[1]
ISVC = ROOT / "fixtures" / "isvc" / "cpu-small.yaml"
NS = "default"
INFER = "/v2/models/cpu-small/infer"  # the runtime serves the model as the isvc
BODY = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32",
                    "data": [1, 2, 3, 4]}]}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _ready_pods(cluster: LocalCluster) -> int:
    pods = cluster.store.list("pods", namespace=NS)["items"]
    return sum(1 for p in pods if not p["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (p.get("status") or {}).get("conditions") or []))


def _all_pods(cluster: LocalCluster) -> int:
    return cluster.store.count("pods", NS)


def _wait(pred: Any, timeout: float, what: str, step: float = 0.2) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return time.monotonic() - t0
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


async def _load(url: str, host: str, workers: int, seconds: float) -> list[int]:
    codes: list[int] = []
    deadline = time.monotonic() + seconds

    async def worker(c: httpx.AsyncClient) -> None:
        for _ in range(10_000):
            if time.monotonic() >= deadline:
                return
            r = await c.post(url + INFER, json=BODY, headers={"Host": host})
            codes.append(r.status_code)

    async with httpx.AsyncClient(timeout=30.0) as c:
        await asyncio.gather(*(worker(c) for _ in range(workers)))
    return codes


def test_cpu_isvc_scales_up_down_to_zero_and_cold_starts(tmp_path: Path) -> None:
    cluster = LocalCluster(profile="fast")
    pids: set[int] = set()
    ports: list[int] = []
    try:
        cluster.start()
        ports = [cluster.emulator.port, cluster.ingress.port, cluster.metrics.port]
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        api = k8s_config.new_client_from_config(config_file=str(kubeconfig))
        custom = k8s.CustomObjectsApi(api)
        custom.create_namespaced_custom_object("serving.kserve.io", "v1beta1", NS,
                                               "inferenceservices",
                                               yaml.safe_load(ISVC.read_text()))

        def isvc_ready() -> bool:
            obj = custom.get_namespaced_custom_object("serving.kserve.io", "v1beta1", NS,
                                                      "inferenceservices", "cpu-small")
            return any(c["type"] == "Ready" and c["status"] == "True"
                       for c in (obj.get("status") or {}).get("conditions") or [])

        _wait(isvc_ready, 30, "the InferenceService to be Ready")
        obj = custom.get_namespaced_custom_object("serving.kserve.io", "v1beta1", NS,
                                                  "inferenceservices", "cpu-small")
        assert obj["status"]["url"] == "http://cpu-small.default.example.com"
        host = cluster.host_for("cpu-small", NS)

        # Load: 4 clients in a closed loop, 100 ms per request, cc = 1 -> up to 5 pods.
        peak = 0

        async def load_and_watch() -> list[int]:
            nonlocal peak
            task = asyncio.create_task(_load(cluster.ingress_url, host, 4, 12.0))
            while not task.done():
                peak = max(peak, _ready_pods(cluster))
                pids.update(cluster.model_server_pids())
                await asyncio.sleep(0.25)
            return await task

        codes = asyncio.run(load_and_watch())
        assert codes and all(c == 200 for c in codes), {c: codes.count(c) for c in codes}
        assert peak >= 3, f"expected scale-up under load, peak ready pods {peak}"

        # Idle: stable window 6 s + delay 4 s + retention 5 s (+ grace) -> zero pods.
        took = _wait(lambda: _all_pods(cluster) == 0, 60, "scale to zero")
        assert took >= 5.0, f"scaled to zero after only {took:.1f} s"
        pa = custom.get_namespaced_custom_object(
            "autoscaling.internal.knative.dev", "v1alpha1", NS, "podautoscalers",
            "cpu-small-predictor-00001")
        active = next(c for c in pa["status"]["conditions"] if c["type"] == "Active")
        assert active["status"] == "False" and active["reason"] == "NoTraffic"
        assert pa["status"]["desiredScale"] == 0

        # Cold start: one request from zero is buffered and answered.
        t0 = time.monotonic()
        r = httpx.post(cluster.ingress_url + INFER, json=BODY, headers={"Host": host},
                       timeout=60.0)
        cold = time.monotonic() - t0
        assert r.status_code == 200, r.text
        assert r.headers["x-pod-name"].startswith("cpu-small-predictor-00001-deployment-")
        assert cold < 30.0
        pids.update(cluster.model_server_pids())
        metrics = httpx.get(cluster.metrics_url + "/metrics").text
        assert ('kn_revision_pods_desired{k8s_namespace_name="default",kn_configuration_name='
                '"cpu-small-predictor"') in metrics
        print(f"peak ready pods {peak}; zero after {took:.1f} s idle; cold start {cold:.2f} s")
    finally:
        cluster.stop()
    assert pids
    left = [p for p in pids if _alive(p)]
    assert not left, f"model-server processes left behind: {left}"
    assert not any(_port_open(p) for p in ports), "a cluster port is still open"
