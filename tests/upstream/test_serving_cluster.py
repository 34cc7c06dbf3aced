"""``harness cluster up --upstream --serving`` as a user runs it: real Knative Serving 1.21
and KServe 0.20 (built from their Go modules, installed from their own YAML in the module
cache) running as pods on the real control plane, their webhooks answering the API server
with upstream's words, a Knative Service and an InferenceService of ``fixtures/isvc/``
Ready and answering through our ingress.

Its own cluster (``own_cluster``: before the session's shared one, which stays bare), and
only with the Knative/KServe build in the cache (``make upstream``).
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from upstream_run import Upstream, harness_cli, run_leftovers, start_upstream

from harness.files import data_path
from harness.profiles import load_profile
from harness.upstream import serving

pytestmark = pytest.mark.own_cluster


def not_built() -> str | None:
    """Why the Knative/KServe images cannot run here (their binaries not built), or None."""
    from harness.nodeagent import images as table
    from harness.upstream import build

    entries = table.load_table(upstream_bin=build.bin_dir())
    for image in serving.images():
        try:
            table.resolve(entries, image)
        except table.ImageNotFound as exc:
            return str(exc)
    return None


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, host_lock: None) -> Iterator[Upstream]:
    reason = not_built()
    if reason:
        pytest.skip(f"the Knative/KServe build is missing ('make upstream'): {reason}")
    state_dir = tmp_path_factory.mktemp("serving-state")
    started = time.monotonic()
    proc, state = start_upstream(state_dir, "--serving", "--profile", "fast")
    print(f"harness cluster up --upstream --serving: ready in "
          f"{time.monotonic() - started:.0f} s")
    try:
        yield Upstream(Path(state["kubeconfig"]), state, tmp_path_factory.mktemp("kcache"),
                       log=state_dir.with_name(state_dir.name + ".log"))
    finally:
        down = harness_cli("cluster", "down", "--state-dir", str(state_dir),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, _ = down.communicate(timeout=180)
        assert proc.wait(180) == 0, out
        assert run_leftovers(state["run_id"], state_dir) == {}, "the run left things behind"


@pytest.fixture
def workspace(served: Upstream) -> Iterator[str]:
    name = f"hx-serving-{uuid.uuid4().hex[:6]}"
    served.kubectl("create", "namespace", name)
    yield name
    served.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")


def ready_pods(up: Upstream, namespace: str) -> dict[str, dict[str, Any]]:
    out = {}
    for pod in up.json("get", "pods", "-n", namespace)["items"]:
        conds = {c["type"]: c["status"] for c in pod["status"].get("conditions") or []}
        if conds.get("Ready") == "True":
            labels = pod["metadata"]["labels"]
            out[labels.get("app") or labels.get("control-plane")] = pod
    return out


def wait_ready(up: Upstream, kind: str, name: str, ns: str, timeout: int = 200) -> dict:
    proc = up.kubectl("wait", "--for=condition=Ready", f"{kind}/{name}", "-n", ns,
                      f"--timeout={timeout}s", check=False, timeout=timeout + 30)
    obj = up.json("get", kind, name, "-n", ns)
    if proc.returncode != 0:
        pods = up.kubectl("get", "pods", "-n", ns, "-o", "wide", check=False).stdout
        events = up.kubectl("get", "events", "-n", ns, check=False).stdout
        raise AssertionError(f"{kind}/{name} not Ready: {proc.stderr}\n"
                             f"{json.dumps(obj.get('status'), indent=1)}\n{pods}\n{events}")
    return obj


def through_ingress(up: Upstream, url: str, path: str, **kw: Any) -> httpx.Response:
    """A request to a Knative route's URL through our ingress on 127.0.0.1 (Host header)."""
    host = url.split("://", 1)[1]
    return httpx.request(kw.pop("method", "GET"), up.state["ingress_url"] + path,
                         headers={"Host": host}, timeout=60.0, **kw)


def test_knative_and_kserve_run_as_pods(served: Upstream) -> None:
    knative = ready_pods(served, "knative-serving")
    assert set(knative) >= {"controller", "autoscaler", "activator", "webhook"}, knative
    assert knative["controller"]["spec"]["containers"][0]["image"] == \
        "gcr.io/knative-releases/knative.dev/serving/cmd/controller:v1.21.1"
    assert "kserve-controller-manager" in ready_pods(served, "kserve")
    log = served.log.read_text() if served.log else ""
    for step in ("Knative webhook Ready", "Knative's webhook configurations have their CA "
                 "bundle", "KServe kserve-controller-manager Ready",
                 "ClusterServingRuntime harness-linear"):
        assert f"harness cluster: {step}: done in" in log, (step, log[-3000:])
    autoscaler = served.json("get", "configmap", "-n", "knative-serving", "config-autoscaler")
    fast = load_profile("fast").config
    assert autoscaler["data"]["stable-window"] == str(fast["stable-window"])
    runtime = served.json("get", "clusterservingruntime", "harness-linear")
    assert runtime["spec"]["containers"][0]["image"] == "harness-modelserver:0.1.0"


def test_knative_webhook_answers_with_upstreams_words(served: Upstream) -> None:
    ksvc = {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": "bad", "namespace": "default"},
            "spec": {"template": {"spec": {"containerConcurrency": -1, "containers": [
                {"image": "harness-modelserver:0.1.0"}]}}}}
    proc = served.kubectl("apply", "--dry-run=server", "-f", "-",
                          input=yaml.safe_dump(ksvc), check=False)
    assert proc.returncode != 0
    assert 'admission webhook "validation.webhook.serving.knative.dev" denied the request' \
        in proc.stderr, proc.stderr
    assert "expected 0 <= -1 <= 1000: spec.template.spec.containerConcurrency" in proc.stderr


def test_kserve_webhook_answers_with_upstreams_words(served: Upstream) -> None:
    isvc = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": "bad", "namespace": "default"},
            "spec": {"predictor": {"minReplicas": 3, "maxReplicas": 1,
                                   "model": {"modelFormat": {"name": "harness-linear"}}}}}
    proc = served.kubectl("apply", "--dry-run=server", "-f", "-",
                          input=yaml.safe_dump(isvc), check=False)
    assert proc.returncode != 0
    assert 'admission webhook "inferenceservice.kserve-webhook-server.validator" denied' \
        in proc.stderr, proc.stderr
    assert "'MinReplicas' cannot be greater than MaxReplicas" in proc.stderr


def test_knative_service_becomes_ready_and_answers(served: Upstream, workspace: str) -> None:
    ksvc = {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": "hello", "namespace": workspace},
            "spec": {"template": {"spec": {"containers": [{
                "image": "harness-modelserver:0.1.0",
                "env": [{"name": "MODEL_NAME", "value": "hello"}]}]}}}}
    served.kubectl("apply", "-f", "-", input=yaml.safe_dump(ksvc))
    obj = wait_ready(served, "ksvc", "hello", workspace)
    assert obj["status"]["url"] == f"http://hello.{workspace}.example.com"
    r = through_ingress(served, obj["status"]["url"], "/v2/models/hello/ready")
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "hello", "ready": True}   # the revision's MODEL_NAME
    # the pod's host name is its name (its own UTS namespace): the model server's header
    assert r.headers["X-Pod-Name"].startswith("hello-00001-deployment-"), r.headers


def test_inference_service_becomes_ready_and_predicts(served: Upstream,
                                                      workspace: str) -> None:
    isvc = yaml.safe_load(data_path("fixtures", "isvc", "cpu-small.yaml").read_text())
    isvc["metadata"]["namespace"] = workspace
    served.kubectl("apply", "-f", "-", input=yaml.safe_dump(isvc))
    obj = wait_ready(served, "inferenceservice", "cpu-small", workspace)
    predictor = obj["status"]["components"]["predictor"]["url"]
    assert predictor == f"http://cpu-small-predictor.{workspace}.example.com"
    body = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32",
                        "data": [1.0, 2.0, 3.0, 4.0]}]}
    r = through_ingress(served, predictor, "/v2/models/cpu-small/infer", method="POST",
                        json=body)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["shape"] == [1, 3]
