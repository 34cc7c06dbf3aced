"""KServe's storage initializer on the live upstream cluster: pods shaped exactly as KServe
0.20's pod mutator makes them (``pkg/webhook/admission/pod/storage_initializer_injector.go``,
``pkg/credentials/s3``), run by the node agent, the model server Ready and answering a
prediction with the model fetched from:

- ``s3://`` a moto S3 server running as a pod of the cluster (image ``motoserver/moto``),
  credentials and endpoint from the ServiceAccount's Secret and its
  ``serving.kserve.io/s3-*`` annotations, as KServe's credential builder injects them;
- ``http://`` a ``python -m http.server`` pod (image ``python:3.11-slim``) serving the
  model as ``model.tar.gz`` from a ConfigMap volume: kserve_storage unpacks archives (a bare
  ``model.json`` it would refuse: a web server calls it ``application/json``, and KServe
  wants ``application/octet-stream`` for a file that is not an archive);
- ``pvc://`` a claim the real PV controller binds to a hostPath PersistentVolume under the
  run's folder, mounted by KServe's rule (no init container; ``subPath`` at /mnt/models).

The fetched model differs from the one baked into the model server's image (its bias), so
the prediction proves which one was served. Also: KServe's webhook certificate Secret,
written through the API server and valid for the webhook Service's names.
"""

from __future__ import annotations

import base64
import io
import json
import ssl
import subprocess
import sys
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from upstream_run import until as _until

ROOT = Path(__file__).resolve().parents[2]
MODEL = json.loads((ROOT / "fixtures" / "modelserver" / "model" / "model.json").read_text())
FETCHED = {**MODEL, "bias": [10.0, 20.0, 30.0]}   # not the image's baked-in model
X = [1.0, 2.0, 3.0, 4.0]
INIT_IMAGE = "kserve/storage-initializer:v0.20.0"
MOTO = "motoserver/moto:latest"
PYTHON = "python:3.11-slim"


def model_archive(model: dict[str, Any]) -> bytes:
    """``model.json`` in a gzipped tar, as a model is often published over HTTP."""
    raw = json.dumps(model).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("model.json")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()



def expected(model: dict[str, Any], x: list[float]) -> list[float]:
    return [sum(w * v for w, v in zip(row, x, strict=True)) + b
            for row, b in zip(model["weights"], model["bias"], strict=True)]


def netns_of(upstream: Any, pod: dict[str, Any]) -> str:
    a, b = pod["status"]["podIP"].split(".")[2:]
    return f"hxp{upstream.state['run_id']}-{int(a) * 256 + int(b):x}"


def in_pod(upstream: Any, pod: dict[str, Any], script: str) -> str:
    out = subprocess.run(["ip", "netns", "exec", netns_of(upstream, pod), sys.executable,
                          "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def apply(upstream: Any, ns: str, *docs: dict[str, Any]) -> None:
    upstream.kubectl("apply", "-n", ns, "-f", "-",
                     input="---\n".join(yaml.safe_dump(d) for d in docs))


def ready_pod(upstream: Any, ns: str, name: str, timeout: float = 180) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        pod = upstream.json("get", "pod", "-n", ns, name)
        ok = any(c["type"] == "Ready" and c["status"] == "True"
                 for c in pod.get("status", {}).get("conditions", []))
        return pod if ok else None
    try:
        return _until(f"pod {ns}/{name} Ready", ready, timeout)  # type: ignore[no-any-return]
    except AssertionError:
        events = upstream.kubectl("get", "events", "-n", ns, check=False).stdout
        pod = upstream.kubectl("get", "pod", "-n", ns, name, "-o", "yaml", check=False).stdout
        raise AssertionError(f"pod {name} not Ready:\n{events[-3000:]}\n{pod[-3000:]}") from None


# ---------------------------------------------------------------- KServe's pod shape

def kserve_pod(name: str, storage_uri: str, *, service_account: str = "default",
               init_env: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The predictor pod after KServe 0.20's mutator: ``InjectStorageInitializer`` for one
    storageUri (legacy single-URI path), the ServingRuntime's container."""
    container: dict[str, Any] = {
        "name": "kserve-container", "image": "harness-modelserver:0.1.0",
        "command": ["python", "-m", "modelserver"],
        "args": [f"--model_name={name}", "--model_dir=/mnt/models", "--http_port=8080"],
        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": 8080},
                           "periodSeconds": 1},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
    }
    spec: dict[str, Any] = {"serviceAccountName": service_account, "containers": [container],
                            "terminationGracePeriodSeconds": 5}
    if storage_uri.startswith("pvc://"):
        claim, _, sub = storage_uri.removeprefix("pvc://").partition("/")
        container["volumeMounts"] = [{"name": "kserve-pvc-source", "mountPath": "/mnt/models",
                                      "subPath": sub, "readOnly": True}]
        spec["volumes"] = [{"name": "kserve-pvc-source",
                            "persistentVolumeClaim": {"claimName": claim}}]
    else:
        container["volumeMounts"] = [{"name": "kserve-provision-location",
                                      "mountPath": "/mnt/models", "readOnly": True}]
        spec["initContainers"] = [{
            "name": "storage-initializer", "image": INIT_IMAGE,
            "args": [storage_uri, "/mnt/models"],
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"},
                          "requests": {"cpu": "100m", "memory": "100Mi"}},
            "volumeMounts": [{"name": "kserve-provision-location",
                              "mountPath": "/mnt/models"}],
            "env": [*(init_env or []),
                    {"name": "HF_HUB_ENABLE_HF_TRANSFER", "value": "1"},
                    {"name": "HF_XET_HIGH_PERFORMANCE", "value": "1"},
                    {"name": "HF_XET_NUM_CONCURRENT_RANGE_GETS", "value": "8"}],
        }]
        spec["volumes"] = [{"name": "kserve-provision-location", "emptyDir": {}}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": name}, "annotations": {
                "serving.kserve.io/storage-initializer-sourceuri": storage_uri}},
            "spec": spec}


def s3_env(secret: dict[str, Any]) -> list[dict[str, Any]]:
    """``s3.BuildSecretEnvs`` of KServe 0.20 for ``secret`` (keys awsAccessKeyID and
    awsSecretAccessKey; annotations s3-endpoint, s3-usehttps, s3-verifyssl, s3-region)."""
    name, ann = secret["metadata"]["name"], secret["metadata"]["annotations"]

    def ref(key: str) -> dict[str, Any]:
        return {"valueFrom": {"secretKeyRef": {"name": name, "key": key}}}
    endpoint = ann["serving.kserve.io/s3-endpoint"]
    scheme = "http://" if ann.get("serving.kserve.io/s3-usehttps") == "0" else "https://"
    return [{"name": "AWS_ACCESS_KEY_ID", **ref("awsAccessKeyID")},
            {"name": "AWS_SECRET_ACCESS_KEY", **ref("awsSecretAccessKey")},
            {"name": "S3_USE_HTTPS", "value": ann["serving.kserve.io/s3-usehttps"]},
            {"name": "S3_ENDPOINT", "value": endpoint},
            {"name": "AWS_ENDPOINT_URL", "value": scheme + endpoint},
            {"name": "S3_VERIFY_SSL", "value": ann["serving.kserve.io/s3-verifyssl"]},
            {"name": "AWS_DEFAULT_REGION", "value": ann["serving.kserve.io/s3-region"]}]


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def store(upstream: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """A namespace with moto's S3 server as a Deployment + Service, holding the model at
    s3://models/linear/v1/model.json, the S3 Secret + ServiceAccount KServe reads, and a
    web server with /linear/v1/model.tar.gz."""
    ns = f"hx-st-{uuid.uuid4().hex[:8]}"
    upstream.kubectl("create", "namespace", ns)
    try:
        apply(upstream, ns, {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "s3"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "s3"}},
                     "template": {"metadata": {"labels": {"app": "s3"}}, "spec": {
                         "containers": [{"name": "moto", "image": MOTO,
                                         "ports": [{"containerPort": 5000}],
                                         "readinessProbe": {"tcpSocket": {"port": 5000},
                                                            "periodSeconds": 1}}]}}}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s3"},
             "spec": {"selector": {"app": "s3"}, "ports": [{"port": 5000}]}})
        archive = base64.b64encode(model_archive(FETCHED)).decode()
        apply(upstream, ns, {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "model-archive"},
            "binaryData": {"model.tar.gz": archive}}, {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                         "containers": [{
                             "name": "web", "image": PYTHON,
                             "command": ["python", "-m", "http.server", "8000",
                                         "--directory", "/srv"],
                             "ports": [{"containerPort": 8000}],
                             "readinessProbe": {"tcpSocket": {"port": 8000},
                                                "periodSeconds": 1},
                             "volumeMounts": [{"name": "models",
                                               "mountPath": "/srv/linear/v1"}]}],
                         "volumes": [{"name": "models",
                                      "configMap": {"name": "model-archive"}}]}}}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
             "spec": {"selector": {"app": "web"}, "ports": [{"port": 80,
                                                             "targetPort": 8000}]}})
        pods = _until("the S3 pod Ready", lambda: [
            p for p in upstream.json("get", "pods", "-n", ns, "-l", "app=s3")["items"]
            if any(c["type"] == "Ready" and c["status"] == "True"
                   for c in p.get("status", {}).get("conditions", []))], timeout=120)
        body = json.dumps(FETCHED)
        in_pod(upstream, pods[0], (
            "import boto3\n"
            "c = boto3.client('s3', endpoint_url='http://127.0.0.1:5000', region_name="
            "'us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing')\n"
            "c.create_bucket(Bucket='models')\n"
            f"c.put_object(Bucket='models', Key='linear/v1/model.json', Body={body!r}, "
            "ContentType='application/octet-stream')\n"))
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {
            "name": "s3creds", "annotations": {
                "serving.kserve.io/s3-endpoint": f"s3.{ns}.svc.cluster.local:5000",
                "serving.kserve.io/s3-usehttps": "0", "serving.kserve.io/s3-verifyssl": "0",
                "serving.kserve.io/s3-region": "us-east-1"}},
            "stringData": {"awsAccessKeyID": "testing", "awsSecretAccessKey": "testing"}}
        apply(upstream, ns, secret, {"apiVersion": "v1", "kind": "ServiceAccount",
                                     "metadata": {"name": "models"},
                                     "secrets": [{"name": "s3creds"}]})
        yield ns, secret
    finally:
        upstream.kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=false")


def predict(upstream: Any, ns: str, pod: dict[str, Any], name: str) -> list[float]:
    """A V1 prediction asked from the S3 pod (another pod) to the model server's pod IP."""
    client = upstream.json("get", "pods", "-n", ns, "-l", "app=s3")["items"][0]
    out = in_pod(upstream, client, (
        "import json, urllib.request as u\n"
        f"req = u.Request('http://{pod['status']['podIP']}:8080/v1/models/{name}:predict', "
        f"data=json.dumps({{'instances': [{X}]}}).encode(), "
        "headers={'Content-Type': 'application/json'})\n"
        "print(u.urlopen(req, timeout=10).read().decode())\n"))
    return [float(v) for v in json.loads(out)["predictions"][0]]


def served(upstream: Any, ns: str, name: str) -> dict[str, Any]:
    pod = ready_pod(upstream, ns, name)
    got = predict(upstream, ns, pod, name)
    assert got == pytest.approx(expected(FETCHED, X))
    assert got != pytest.approx(expected(MODEL, X))
    return pod


# ---------------------------------------------------------------- tests

def test_s3_model_fetched_by_the_storage_initializer(upstream: Any,
                                                     store: tuple[str, dict[str, Any]]) -> None:
    ns, secret = store
    apply(upstream, ns, kserve_pod("from-s3", "s3://models/linear/v1",
                                   service_account="models", init_env=s3_env(secret)))
    pod = served(upstream, ns, "from-s3")
    init = pod["status"]["initContainerStatuses"][0]
    assert init["name"] == "storage-initializer"
    assert init["state"]["terminated"]["exitCode"] == 0
    log = upstream.kubectl("logs", "-n", ns, "from-s3", "-c", "storage-initializer").stdout
    assert "Successfully copied s3://models/linear/v1 to /mnt/models" in log
    reasons = {e["reason"] for e in upstream.json(
        "get", "events", "-n", ns, "--field-selector", "involvedObject.name=from-s3")["items"]}
    assert "Started" in reasons


def test_http_model_fetched_by_the_storage_initializer(upstream: Any,
                                                       store: tuple[str, dict[str, Any]]) -> None:
    ns, _ = store
    url = f"http://web.{ns}.svc.cluster.local/linear/v1/model.tar.gz"
    apply(upstream, ns, kserve_pod("from-http", url))
    served(upstream, ns, "from-http")
    log = upstream.kubectl("logs", "-n", ns, "from-http", "-c", "storage-initializer").stdout
    assert f"Successfully copied {url} to /mnt/models" in log


def test_missing_s3_model_fails_the_init_container(upstream: Any,
                                                   store: tuple[str, dict[str, Any]]) -> None:
    """A storageUri with nothing behind it: the init container exits 1 and is retried with
    kubelet's back-off (restartPolicy Always, as a predictor pod has), the model server
    never starts, the initializer's log says why."""
    ns, secret = store
    apply(upstream, ns, kserve_pod("missing", "s3://models/linear/v9",
                                   service_account="models", init_env=s3_env(secret)))

    def retried() -> dict[str, Any] | None:
        p = upstream.json("get", "pod", "-n", ns, "missing")
        inits = p.get("status", {}).get("initContainerStatuses") or []
        return p if inits and inits[0]["restartCount"] >= 1 else None
    p = _until("the storage initializer failed twice", retried, timeout=120)
    init = p["status"]["initContainerStatuses"][0]
    # restarted: running again or failed again, the last exit 1 either way
    last = init["state"].get("terminated") or init["lastState"]["terminated"]
    assert last["exitCode"] == 1, init
    assert p["status"]["phase"] == "Pending"
    main = p["status"]["containerStatuses"][0]
    assert main["state"]["waiting"]["reason"] == "PodInitializing" and not main["ready"]
    # the failed instance's log: the current one's, or the previous one's once it restarted
    previous = ["--previous"] if "terminated" not in init["state"] else []
    log = upstream.kubectl("logs", "-n", ns, "missing", "-c", "storage-initializer",
                           *previous).stdout
    assert "Failed to fetch model. No model found in linear/v9." in log
    upstream.kubectl("delete", "pod", "-n", ns, "missing", "--wait=false")


def test_pvc_model_mounted_from_a_bound_persistent_volume(
        upstream: Any, store: tuple[str, dict[str, Any]]) -> None:
    ns, _ = store
    run_dir = Path(upstream.kubeconfig).parent / f"upstream-{upstream.state['run_id']}"
    folder = run_dir / "pv" / f"{ns}-models"
    (folder / "linear" / "v1").mkdir(parents=True)
    (folder / "linear" / "v1" / "model.json").write_text(json.dumps(FETCHED))
    pv_name = f"{ns}-models"
    upstream.kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv_name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadOnlyMany"],
                 "storageClassName": "", "persistentVolumeReclaimPolicy": "Retain",
                 "hostPath": {"path": str(folder), "type": "Directory"}}}))
    try:
        apply(upstream, ns, {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "models-pvc"},
            "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "",
                     "resources": {"requests": {"storage": "1Gi"}}}})
        _until("the claim Bound by the PV controller", lambda: upstream.json(
            "get", "pvc", "-n", ns, "models-pvc").get("status", {}).get("phase") == "Bound",
               timeout=60)
        assert upstream.json("get", "pvc", "-n", ns, "models-pvc")["spec"]["volumeName"] == \
            pv_name
        apply(upstream, ns, kserve_pod("from-pvc", "pvc://models-pvc/linear/v1"))
        pod = served(upstream, ns, "from-pvc")
        assert "initContainerStatuses" not in pod["status"]
        assert not Path("/mnt/models/model.json").exists()   # mounted in the pod only
        upstream.kubectl("delete", "pod", "-n", ns, "from-pvc", "--timeout=60s", timeout=90)
        assert (folder / "linear" / "v1" / "model.json").exists()   # the PV's data stays
    finally:
        upstream.kubectl("delete", "pvc", "-n", ns, "models-pvc", "--ignore-not-found",
                         "--timeout=60s", timeout=90)
        upstream.kubectl("delete", "pv", pv_name, "--ignore-not-found", "--timeout=60s",
                         timeout=90)


def test_kserve_webhook_certificate_secret(upstream: Any) -> None:
    from cryptography import x509
    from cryptography.x509.verification import PolicyBuilder, Store

    from harness.upstream.kserve_cert import SERVICE, kserve_webhook_cert

    config = yaml.safe_load(upstream.kubeconfig.read_text())
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for key in ("certificate-authority", "client-certificate", "client-key"):
            holder = cluster if key == "certificate-authority" else user
            path = Path(tmp) / key
            path.write_bytes(base64.b64decode(holder[f"{key}-data"]) if f"{key}-data" in
                             holder else Path(holder[key]).read_bytes())
            files[key] = str(path)
        if upstream.kubectl("get", "namespace", "kserve", check=False).returncode != 0:
            upstream.kubectl("create", "namespace", "kserve")
        tls = ssl.create_default_context(cafile=files["certificate-authority"])
        tls.load_cert_chain(files["client-certificate"], files["client-key"])
        with httpx.Client(base_url=cluster["server"], verify=tls) as client:
            bundle = kserve_webhook_cert(client)
    secret = upstream.json("get", "secret", "-n", "kserve", "kserve-webhook-server-cert")
    assert secret["type"] == "kubernetes.io/tls"
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    assert data["ca.crt"] == bundle
    store_ = Store(x509.load_pem_x509_certificates(bundle))
    for name in (f"{SERVICE}.kserve.svc", f"{SERVICE}.kserve.svc.cluster.local"):
        PolicyBuilder().store(store_).build_server_verifier(x509.DNSName(name)).verify(
            x509.load_pem_x509_certificate(data["tls.crt"]), [])
