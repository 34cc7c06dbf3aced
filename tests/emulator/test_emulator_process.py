"""Starting and stopping: in-process, child process and the ``harness cluster`` command
leave no process and no listening port behind; the cluster file is schema-checked."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from harness.emulator import ChildEmulator, Emulator, load_cluster_config
from harness.errors import UserError


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def test_in_process_start_stop_frees_the_port() -> None:
    emu = Emulator().start()
    port = emu.port
    assert get_json(f"{emu.url}/version")["major"] == "1"  # type: ignore[index]
    w = emu.store.watch("pods")
    emu.stop()
    assert w.closed and port_is_free(port)
    emu.stop()  # idempotent


def test_discovery_documents(emulator: Emulator) -> None:
    groups = get_json(f"{emulator.url}/apis")["groups"]  # type: ignore[index]
    by_name = {g["name"]: g for g in groups}
    for name in ("apps", "serving.kserve.io", "serving.knative.dev",
                 "autoscaling.internal.knative.dev", "events.k8s.io", "coordination.k8s.io"):
        assert by_name[name]["preferredVersion"] in by_name[name]["versions"]
    core = get_json(f"{emulator.url}/api/v1")["resources"]  # type: ignore[index]
    names = {r["name"] for r in core}
    assert {"pods", "pods/status", "nodes/status", "namespaces", "events",
            "endpoints"} <= names
    kserve = get_json(f"{emulator.url}/apis/serving.kserve.io/v1beta1")
    isvc = kserve["resources"][0]  # type: ignore[index]
    assert isvc["shortNames"] == ["isvc"] and isvc["namespaced"] is True
    crds = emulator.store.list("apiextensions.k8s.io/customresourcedefinitions")["items"]
    assert "podautoscalers.autoscaling.internal.knative.dev" in {
        c["metadata"]["name"] for c in crds}
    with urllib.request.urlopen(f"{emulator.url}/healthz", timeout=5) as resp:
        assert resp.read() == b"ok"


def test_child_process_emulator(tmp_path: Path) -> None:
    child = ChildEmulator(tmp_path).start()
    try:
        nodes = get_json(f"{child.url}/api/v1/nodes")["items"]  # type: ignore[index]
        assert len(nodes) == 4 and child.kubeconfig.exists()
    finally:
        rc = child.stop()
    assert rc == 0 and port_is_free(child.port)
    assert not child.state_file.exists()


def test_cluster_up_and_down_commands(tmp_path: Path) -> None:
    env = {**os.environ, "HARNESS_STATE_DIR": str(tmp_path / "state")}
    kubeconfig = tmp_path / "kc"
    up = subprocess.Popen([sys.executable, "-m", "harness", "cluster", "up", "--local",
                           "--kubeconfig", str(kubeconfig)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        state = tmp_path / "state" / "state.json"
        deadline = time.monotonic() + 20
        while not state.exists() and time.monotonic() < deadline and up.poll() is None:
            time.sleep(0.1)
        assert state.exists(), up.stdout.read() if up.stdout else ""
        url = json.loads(state.read_text())["url"]
        assert "127.0.0.1" in kubeconfig.read_text()
        assert get_json(f"{url}/api/v1/nodes")["kind"] == "NodeList"  # type: ignore[index]
        down = subprocess.run([sys.executable, "-m", "harness", "cluster", "down"], env=env,
                              capture_output=True, text=True, timeout=30)
        assert down.returncode == 0, down.stderr
        assert up.wait(20) == 0
    finally:
        if up.poll() is None:
            up.kill()
            up.wait(10)
    out = up.stdout.read() if up.stdout else ""
    assert "kubectl --kubeconfig" in out
    assert port_is_free(int(url.rsplit(":", 1)[1])) and not state.exists()
    again = subprocess.run([sys.executable, "-m", "harness", "cluster", "down"], env=env,
                           capture_output=True, text=True, timeout=30)
    assert again.returncode == 0 and "no cluster is running" in again.stdout


def test_kind_without_tools_exits_2(tmp_path: Path) -> None:
    # An empty PATH: no kind, docker or kubectl, so nothing can be created (tests/test_kind*).
    env = {**os.environ, "PATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "harness", "cluster", "up", "--kind"],
                          capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 2 and "not found on the PATH" in done.stderr


def test_default_cluster_file_has_cpu_and_two_gpu_classes() -> None:
    cfg = load_cluster_config()
    classes = {n.labels.get("gpu.nvidia.com/class") for n in cfg.nodes} - {None}
    assert len(classes) == 2
    assert any("nvidia.com/gpu" not in n.allocatable for n in cfg.nodes)


def test_bad_cluster_file_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("apiVersion: harness.emulator/v1\nkind: Cluster\nnodes:\n"
                   "  - name: n1\n    allocatable: {cpu: 4}\n")
    with pytest.raises(UserError, match="nodes.0.allocatable"):
        load_cluster_config(bad)
