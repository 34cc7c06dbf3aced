"""``harness cluster up --local`` runs the whole cluster (controllers, kubelet, ingress);
``harness cluster down`` or Ctrl-C leaves no model-server process and no port behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def _children(pid: int) -> set[int]:
    """Processes whose parent is ``pid`` (procfs)."""
    out = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.add(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("how", ["down", "ctrl-c"])
def test_cluster_up_serves_and_stops_clean(tmp_path: Path, how: str) -> None:
    env = {**os.environ, "HARNESS_STATE_DIR": str(tmp_path / "state")}
    up = subprocess.Popen([sys.executable, "-m", "harness", "cluster", "up", "--local",
                           "--profile", "fast"], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, start_new_session=True)
    servers: set[int] = set()
    left: list[int] = []
    ports: list[int] = []
    try:
        state_file = tmp_path / "state" / "state.json"
        deadline = time.monotonic() + 30
        while not state_file.exists() and time.monotonic() < deadline and up.poll() is None:
            time.sleep(0.1)
        assert state_file.exists(), up.stdout.read() if up.stdout else ""
        state = json.loads(state_file.read_text())
        ingress = state["ingress"]
        ports = [int(state["port"]), int(ingress.rsplit(":", 1)[1]),
                 int(state["metrics"].rsplit(":", 1)[1])]
        api = k8s_config.new_client_from_config(config_file=state["kubeconfig"])
        doc = yaml.safe_load((ROOT / "fixtures" / "isvc" / "fixed-scale.yaml").read_text())
        k8s.CustomObjectsApi(api).create_namespaced_custom_object(
            "serving.kserve.io", "v1beta1", "default", "inferenceservices", doc)
        lb = k8s.CoreV1Api(api).read_namespaced_service("kourier", "kourier-system")
        assert lb.status.load_balancer.ingress[0].ip == "127.0.0.1"
        assert lb.spec.ports[0].port == ports[1]
        deadline = time.monotonic() + 30
        ok = False
        while time.monotonic() < deadline and not ok:
            try:
                r = httpx.post(ingress + "/v1/models/fixed-scale:predict",
                               json={"instances": [[1, 2, 3, 4]]}, timeout=10,
                               headers={"Host": "fixed-scale-predictor.default.example.com"})
                ok = r.status_code == 200
            except httpx.HTTPError:
                pass
            if not ok:
                time.sleep(0.3)
        assert ok
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(servers) < 2:
            servers = _children(up.pid)
            time.sleep(0.2)
        assert len(servers) == 2, servers  # fixed-scale: two model-server processes
        if how == "down":
            down = subprocess.run([sys.executable, "-m", "harness", "cluster", "down"],
                                  env=env, capture_output=True, text=True, timeout=40)
            assert down.returncode == 0, down.stderr
        else:
            up.send_signal(signal.SIGINT)
        assert up.wait(40) == 0
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait(10)
        left = [p for p in servers if _alive(p)]
        for pid in left:  # clean up even when the check below fails
            os.kill(pid, signal.SIGKILL)
    assert not left, f"model-server processes left behind: {left}"
    assert not any(_port_open(p) for p in ports), "a cluster port is still open"
    assert not (tmp_path / "state" / "state.json").exists()


KSERVE_V1_SAMPLE = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
KSERVE_V2_SAMPLE = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32",
                                "data": [6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6]}]}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on the PATH "
                    "(the dev extras install it into .venv/bin)")
def test_kubectl_apply_cpu_small_then_kserves_curl_example_answers(tmp_path: Path) -> None:
    """As a new user: kubectl apply the fixture, then KServe's curl example with the
    InferenceService's host and name: the runtime serves the model as ``cpu-small``.
    (``--validate=false``: the emulator serves no /openapi yet.)"""
    env = {**os.environ, "HARNESS_STATE_DIR": str(tmp_path / "state")}
    up = subprocess.Popen([sys.executable, "-m", "harness", "cluster", "up", "--local",
                           "--profile", "fast"], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        state_file = tmp_path / "state" / "state.json"
        deadline = time.monotonic() + 30
        while not state_file.exists() and time.monotonic() < deadline and up.poll() is None:
            time.sleep(0.1)
        state = json.loads(state_file.read_text())

        def kubectl(*args: str) -> str:
            done = subprocess.run(
                [str(shutil.which("kubectl")), "--kubeconfig", state["kubeconfig"],
                 "--cache-dir", str(tmp_path / "cache"), *args],
                capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            return done.stdout

        kubectl("apply", "--validate=false", "-f",
                str(ROOT / "fixtures" / "isvc" / "cpu-small.yaml"))
        kubectl("wait", "--for=condition=Ready", "inferenceservice/cpu-small",
                "--timeout=60s")
        url = kubectl("get", "inferenceservice", "cpu-small", "-o",
                      "jsonpath={.status.url}")
        assert kubectl("get", "inferenceservice", "cpu-small", "-o", "jsonpath="
                       "{.status.clusterServingRuntimeName}") == "harness-linear"
        host = url.split("://", 1)[1]
        assert host == "cpu-small.default.example.com"
        ingress = state["ingress"]
        r = httpx.post(f"{ingress}/v1/models/cpu-small:predict", json=KSERVE_V1_SAMPLE,
                       headers={"Host": host}, timeout=60)
        assert r.status_code == 200, r.text
        assert len(r.json()["predictions"]) == 2
        r = httpx.post(f"{ingress}/v2/models/cpu-small/infer", json=KSERVE_V2_SAMPLE,
                       headers={"Host": host}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["model_name"] == "cpu-small"
        assert r.json()["outputs"][0]["shape"] == [2, 3]
        # the sample model's own name is not what KServe serves
        r = httpx.post(f"{ingress}/v1/models/linear:predict", json=KSERVE_V1_SAMPLE,
                       headers={"Host": host}, timeout=60)
        assert r.status_code == 404
        up.send_signal(signal.SIGINT)
        assert up.wait(40) == 0
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait(10)
