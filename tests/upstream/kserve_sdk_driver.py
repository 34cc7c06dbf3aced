"""KServe's Python SDK (``kserve`` 0.20.0 from PyPI) driving an InferenceService, run with
the interpreter of the SDK's own environment (``fixtures/kserve-sdk/requirements.txt``) by
``test_kserve_sdk.py``; it imports nothing of the harness. One step per call, its result as
one JSON line on stdout; an SDK error is a traceback and exit code 1.

    python kserve_sdk_driver.py create KUBECONFIG NAMESPACE NAME TIMEOUT_S
        KServeClient.create of a V1beta1InferenceService whose predictor is a
        V1beta1ModelSpec of model format harness-linear (our ClusterServingRuntime), then
        wait_isvc_ready (polling, TIMEOUT_S), then get:
        {"created": ..., "ready": ..., "ready_after_s": ...}
    python kserve_sdk_driver.py delete KUBECONFIG NAMESPACE NAME TIMEOUT_S
        KServeClient.delete, then get until the API server answers 404 (TIMEOUT_S):
        {"deleted": ..., "gone_after_s": ...}
"""

from __future__ import annotations

import json
import sys
import time

from kserve import (
    KServeClient,
    V1beta1InferenceService,
    V1beta1InferenceServiceSpec,
    V1beta1ModelFormat,
    V1beta1ModelSpec,
    V1beta1PredictorSpec,
    constants,
)
from kubernetes import client


def inference_service(namespace: str, name: str) -> V1beta1InferenceService:
    """The SDK's objects for a one-replica CPU predictor of model format harness-linear."""
    return V1beta1InferenceService(
        api_version=constants.KSERVE_V1BETA1,
        kind=constants.KSERVE_KIND_INFERENCESERVICE,
        metadata=client.V1ObjectMeta(
            name=name, namespace=namespace,
            annotations={"serving.kserve.io/deploymentMode": "Serverless"}),
        spec=V1beta1InferenceServiceSpec(predictor=V1beta1PredictorSpec(
            min_replicas=1, max_replicas=1,
            model=V1beta1ModelSpec(
                model_format=V1beta1ModelFormat(name="harness-linear"),
                resources=client.V1ResourceRequirements(
                    requests={"cpu": "100m", "memory": "128Mi"},
                    limits={"cpu": "1", "memory": "512Mi"})))))


def create(kserve: KServeClient, namespace: str, name: str, timeout_s: float) -> dict:
    t0 = time.monotonic()
    created = kserve.create(inference_service(namespace, name), namespace=namespace)
    kserve.wait_isvc_ready(name, namespace=namespace, timeout_seconds=timeout_s,
                           polling_interval=2)
    return {"created": created, "ready": kserve.get(name, namespace=namespace),
            "ready_after_s": round(time.monotonic() - t0, 1)}


def delete(kserve: KServeClient, namespace: str, name: str, timeout_s: float) -> dict:
    t0 = time.monotonic()
    deleted = kserve.delete(name, namespace=namespace)
    while time.monotonic() - t0 < timeout_s:
        try:
            kserve.get(name, namespace=namespace)
        except RuntimeError as exc:   # the SDK wraps the ApiException's words
            if "(404)" in str(exc):
                return {"deleted": deleted, "gone_after_s": round(time.monotonic() - t0, 1)}
            raise
        time.sleep(1)
    raise SystemExit(f"InferenceService {namespace}/{name} still there {timeout_s} s after "
                     "KServeClient.delete")


def main(argv: list[str]) -> int:
    step, kubeconfig, namespace, name, timeout_s = argv
    kserve = KServeClient(config_file=kubeconfig)
    result = {"create": create, "delete": delete}[step](kserve, namespace, name,
                                                        float(timeout_s))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
