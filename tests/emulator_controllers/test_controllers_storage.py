"""The storage initializer really fetches the model: from a local S3 (moto's server
mode), a local HTTP server, and a folder standing for a PVC; and in the cluster, each
storage fixture's pod starts only after its model was fetched, then serves it."""

from __future__ import annotations

import http.server
import os
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from harness.emulator.controllers.storage import StorageError, fetch
from harness.emulator.local_cluster import LocalCluster

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "fixtures" / "modelserver" / "model" / "model.json"
ISVC = "serving.kserve.io/inferenceservices"


@pytest.fixture(scope="module")
def http_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A web server: ``/linear/v1/model.json`` as ``application/json`` (a web server's
    type), the same under ``/bin/`` as ``application/octet-stream``, and
    ``/linear/v1.tar.gz`` (``application/gzip``) holding it."""
    root = tmp_path_factory.mktemp("www")
    for top in (root, root / "bin"):
        (top / "linear" / "v1").mkdir(parents=True)
        (top / "linear" / "v1" / "model.json").write_bytes(MODEL.read_bytes())
    with tarfile.open(root / "linear" / "v1.tar.gz", "w:gz") as tar:
        tar.add(MODEL, arcname="model.json")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, directory=str(root), **kw)

        def guess_type(self, path: Any) -> str:
            if str(path).startswith("/bin/") or "/bin/" in str(path):
                return "application/octet-stream"
            return super().guess_type(path)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def pvc_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pvcs")
    (root / "models-pvc" / "linear" / "v1").mkdir(parents=True)
    (root / "models-pvc" / "linear" / "v1" / "model.json").write_bytes(MODEL.read_bytes())
    return root


def test_fetch_s3(s3: str, tmp_path: Path) -> None:
    (out,) = fetch("s3://models/linear/v1", tmp_path, s3_endpoint=s3)
    assert out == tmp_path / "model.json"
    assert out.read_bytes() == MODEL.read_bytes()
    with pytest.raises(StorageError, match="no objects"):
        fetch("s3://models/missing", tmp_path / "x", s3_endpoint=s3)


def test_fetch_http_with_kserve_storages_content_types(http_root: str, tmp_path: Path
                                                      ) -> None:
    (out,) = fetch(f"{http_root}/bin/linear/v1/model.json", tmp_path)
    assert out.read_bytes() == MODEL.read_bytes()
    (out2,) = fetch(f"{http_root}/linear/v1.tar.gz", tmp_path / "tgz")
    assert out2 == tmp_path / "tgz" / "model.json"          # unpacked, archive removed
    assert out2.read_bytes() == MODEL.read_bytes()
    with pytest.raises(StorageError, match=r"did not respond with 'Content-Type': "
                                           r"'application/octet-stream'"):
        fetch(f"{http_root}/linear/v1/model.json", tmp_path / "json")
    with pytest.raises(StorageError, match="No filename contained in URI"):
        fetch(f"{http_root}/bin/linear/v1/", tmp_path / "dir")
    with pytest.raises(StorageError, match="404"):
        fetch(f"{http_root}/nope.json", tmp_path)


def test_fetch_pvc(pvc_root: Path, tmp_path: Path) -> None:
    files = fetch("pvc://models-pvc/linear/v1", tmp_path, pvc_root=pvc_root)
    assert [f.name for f in files] == ["model.json"]
    with pytest.raises(StorageError, match="does not exist"):
        fetch("pvc://other/x", tmp_path, pvc_root=pvc_root)
    with pytest.raises(StorageError, match="unsupported"):
        fetch("gs://bucket/x", tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_storage_fixtures_serve_in_the_cluster(s3: str, http_root: str,
                                               pvc_root: Path) -> None:
    docs = {}
    for kind in ("s3", "http", "pvc"):
        doc = yaml.safe_load((ROOT / "fixtures" / "isvc" / f"storage-{kind}.yaml").read_text())
        if kind == "http":
            doc["spec"]["predictor"]["model"]["storageUri"] = (
                f"{http_root}/bin/linear/v1/model.json")
        docs[kind] = doc
    with LocalCluster(profile="fast", s3_endpoint=s3, pvc_root=pvc_root) as cluster:
        for doc in docs.values():
            cluster.store.create(ISVC, doc, namespace="default")

        def ready(name: str) -> bool:
            obj = cluster.store.get(ISVC, name, namespace="default")
            return any(c["type"] == "Ready" and c["status"] == "True"
                       for c in (obj.get("status") or {}).get("conditions") or [])

        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not all(ready(f"storage-{k}") for k in docs):
            time.sleep(0.2)
        assert all(ready(f"storage-{k}") for k in docs)
        for kind in docs:
            name = f"storage-{kind}"
            (pod,) = cluster.store.list("pods", namespace="default", label_selector=(
                f"serving.kserve.io/inferenceservice={name}"))["items"]
            if kind == "pvc":   # KServe 0.20 mounts the claim: no init container
                assert "initContainers" not in pod["spec"]
                assert "initContainerStatuses" not in pod["status"]
                assert {"name": "kserve-pvc-source", "persistentVolumeClaim": {
                    "claimName": "models-pvc"}} in pod["spec"]["volumes"]
                assert {"name": "kserve-pvc-source", "mountPath": "/mnt/models",
                        "subPath": "linear/v1", "readOnly": True} in \
                    pod["spec"]["containers"][0]["volumeMounts"]
            else:
                init = pod["status"]["initContainerStatuses"][0]
                assert init["name"] == "storage-initializer"
                assert init["state"]["terminated"]["reason"] == "Completed"
            conds = {c["type"]: c for c in pod["status"]["conditions"]}
            assert [conds[t]["status"] for t in ("PodScheduled", "Initialized",
                                                  "ContainersReady", "Ready")] == ["True"] * 4
            r = httpx.post(cluster.ingress_url + f"/v1/models/{name}:predict",
                           json={"instances": [[1, 2, 3, 4]]},
                           headers={"Host": cluster.host_for(name, "default")}, timeout=30)
            assert r.status_code == 200, r.text
            assert r.headers["x-pod-name"] == pod["metadata"]["name"]
        pids = cluster.model_server_pids()
        assert len(pids) == 3
        # Deleting the InferenceServices collects everything down to the processes.
        for kind in docs:
            cluster.store.delete(ISVC, f"storage-{kind}", namespace="default")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
                cluster.store.count("pods", "default") or cluster.kubelet.pods):
            time.sleep(0.1)
        assert cluster.store.count("pods", "default") == 0 and not cluster.kubelet.pods
        for resource in ("serving.knative.dev/services", "serving.knative.dev/revisions",
                         "autoscaling.internal.knative.dev/podautoscalers",
                         "apps/deployments"):
            assert cluster.store.count(resource, "default") == 0, resource
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        r = httpx.get(cluster.ingress_url + "/v2/health/ready", timeout=5,
                      headers={"Host": cluster.host_for("storage-s3", "default")})
        assert r.status_code == 404  # the route went with the Knative Service
