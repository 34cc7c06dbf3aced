"""KServe's Python SDK (``kserve`` 0.20.0 from PyPI) against real KServe on the upstream
cluster: ``KServeClient.create`` of an InferenceService made of the SDK's own objects
(V1beta1InferenceService / V1beta1PredictorSpec / V1beta1ModelSpec of our
ClusterServingRuntime's model format ``harness-linear``), ``wait_isvc_ready`` (bounded),
its URL (the predictor's route: KServe without Istio) and status, one V1 prediction
through our ingress on 127.0.0.1, then ``KServeClient.delete`` until the API server no
longer has it.

The SDK runs in its own pinned environment (``fixtures/kserve-sdk/requirements.txt``,
built by :mod:`harness.nodeagent.imageenv` on first use, about 30 s with pip's cache warm):
it would not fit the project's venv (pandas, numpy, grpcio, fastapi, ~400 MB). The test
drives it as a subprocess (``kserve_sdk_driver.py``), as a user's script would run.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from test_serving_cluster import served, through_ingress  # noqa: F401 (the serving cluster)
from upstream_run import Upstream

from harness.files import data_path
from harness.nodeagent import imageenv

pytestmark = pytest.mark.own_cluster   # the serving cluster is this module's own

REQUIREMENTS = data_path("fixtures", "kserve-sdk", "requirements.txt")
DRIVER = Path(__file__).with_name("kserve_sdk_driver.py")
READY_TIMEOUT_S = 240
GONE_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def sdk_python(pytestconfig: pytest.Config) -> str:
    """The interpreter of the SDK's environment, built first when missing (one line says so,
    with the time it took)."""
    report = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    say = (lambda line: report.write_line(f"kserve SDK: {line}")) if report else None
    return str(imageenv.ensure("kserve-sdk", REQUIREMENTS, progress=say))


def sdk(python: str, up: Upstream, step: str, namespace: str, name: str,
        timeout_s: int) -> dict[str, Any]:
    proc = subprocess.run([python, str(DRIVER), step, str(up.kubeconfig), namespace, name,
                           str(timeout_s)], capture_output=True, text=True,
                          timeout=timeout_s + 60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"kserve SDK {step}: {proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(READY_TIMEOUT_S + GONE_TIMEOUT_S + 300)   # the cluster's bring-up too
def test_kserve_sdk_creates_waits_predicts_and_deletes(served: Upstream,  # noqa: F811
                                                      sdk_python: str) -> None:
    namespace = f"hx-sdk-{uuid.uuid4().hex[:6]}"
    served.kubectl("create", "namespace", namespace)
    try:
        done = sdk(sdk_python, served, "create", namespace, "sdk-linear", READY_TIMEOUT_S)
        created, isvc = done["created"], done["ready"]
        # what KServe's webhook made of the SDK's object
        assert created["metadata"]["uid"] == isvc["metadata"]["uid"]
        model = isvc["spec"]["predictor"]["model"]
        assert model["modelFormat"]["name"] == "harness-linear"
        status = isvc["status"]
        conditions = {c["type"]: c["status"] for c in status["conditions"]}
        for kind in ("Ready", "PredictorReady", "IngressReady", "LatestDeploymentReady"):
            assert conditions.get(kind) == "True", (kind, json.dumps(status, indent=1))
        shown = json.dumps(status, indent=1)
        # no Istio virtual service: KServe gives the predictor's route as the service's URL
        url = f"http://sdk-linear-predictor.{namespace}.example.com"
        assert status["url"] == url, shown
        assert status["address"]["url"] == \
            f"http://sdk-linear-predictor.{namespace}.svc.cluster.local", shown
        predictor = status["components"]["predictor"]
        assert predictor["url"] == url, shown
        assert predictor["latestReadyRevision"] == predictor["latestCreatedRevision"], shown
        # KServe's modelStatus may still say InProgress just after Ready: bounded wait
        deadline = time.monotonic() + 60
        while status["modelStatus"]["transitionStatus"] != "UpToDate" and \
                time.monotonic() < deadline:
            time.sleep(1)
            status = served.json("get", "isvc", "sdk-linear", "-n", namespace)["status"]
        assert status["modelStatus"]["transitionStatus"] == "UpToDate", json.dumps(status)
        # served by our ClusterServingRuntime's container (no image in the SDK's object)
        ksvc = served.json("get", "ksvc", "sdk-linear-predictor", "-n", namespace)
        container = ksvc["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "harness-modelserver:0.1.0", container

        # one V1 prediction through our ingress (Host header), as a client outside would
        r = through_ingress(served, url, "/v1/models/sdk-linear:predict", method="POST",
                            json={"instances": [[1.0, 2.0, 3.0, 4.0]]})
        assert r.status_code == 200, r.text
        predictions = r.json()["predictions"]
        assert len(predictions) == 1 and len(predictions[0]) == 3, predictions

        gone = sdk(sdk_python, served, "delete", namespace, "sdk-linear", GONE_TIMEOUT_S)
        assert gone["deleted"]["metadata"]["name"] == "sdk-linear"
        assert gone["gone_after_s"] <= GONE_TIMEOUT_S
        print(f"kserve SDK: create -> Ready in {done['ready_after_s']} s, delete -> gone in "
              f"{gone['gone_after_s']} s")
        left = served.kubectl("get", "inferenceservice", "sdk-linear", "-n", namespace,
                              check=False)
        assert left.returncode != 0 and "NotFound" in left.stderr, left.stderr
        # the Knative Service it owned goes with it (the garbage collector, bounded)
        deadline = time.monotonic() + GONE_TIMEOUT_S
        while "sdk-linear-predictor" in served.kubectl("get", "ksvc", "-n", namespace,
                                                       "-o", "name").stdout:
            assert time.monotonic() < deadline, "the predictor's Knative Service stayed"
            time.sleep(1)
    finally:
        served.kubectl("delete", "namespace", namespace, "--ignore-not-found",
                       "--wait=false")
