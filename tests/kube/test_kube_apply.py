"""Apply (create or replace), delete and wait: core types and custom resources alike;
waits end with the object or with an error naming the last state; CRD detection says
what is missing; the ingress address is found from Kourier, Istio or the option."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from harness.emulator import BUILTIN_RESOURCES, Emulator, Registry, Store
from harness.errors import UserError
from harness.kube import apply as kapply
from harness.kube import crds, knative
from harness.kube.client import Kube, WaitTimeout, load_api_client
from harness.kube.resources import INFERENCE_SERVICES
from harness.kube.safety import RUN_LABEL
from harness.kube.wait import wait_condition, wait_isvc_ready

ISVC_YAML = """
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: sk
spec:
  predictor:
    minReplicas: 0
    model: {modelFormat: {name: sklearn}, storageUri: "s3://models/sk"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: extra}
data: {k: v}
"""


def test_apply_creates_then_replaces_and_labels_with_the_run(kube: Kube, emulator: Emulator,
                                                             namespace: str) -> None:
    manifests = kapply.load_manifests(ISVC_YAML)
    assert [m["kind"] for m in manifests] == ["InferenceService", "ConfigMap"]
    first = kapply.apply_all(kube, manifests, namespace=namespace)
    assert first[0]["metadata"]["labels"][RUN_LABEL] == kube.guard.run_id
    changed = dict(manifests[0])
    changed["spec"] = {**changed["spec"], "predictor": {**changed["spec"]["predictor"],
                                                        "minReplicas": 1}}
    second = kapply.apply(kube, changed, namespace=namespace)
    assert second["metadata"]["uid"] == first[0]["metadata"]["uid"]
    stored = emulator.store.get("serving.kserve.io/inferenceservices", "sk",
                                namespace=namespace)
    assert stored["spec"]["predictor"]["minReplicas"] == 1
    assert kapply.get(kube, "configmaps", "extra", namespace)["data"] == {"k": "v"}


def test_delete_waits_until_gone_and_tolerates_absence(kube: Kube, emulator: Emulator,
                                                       namespace: str) -> None:
    isvc = kapply.load_manifests(ISVC_YAML)[0]
    kapply.apply(kube, isvc, namespace=namespace)
    assert kapply.delete(kube, isvc, namespace=namespace, wait=True, timeout=5)
    assert kapply.get(kube, INFERENCE_SERVICES, "sk", namespace) is None
    assert not kapply.delete(kube, isvc, namespace=namespace)


def test_wait_gone_times_out_naming_the_finalizer(kube: Kube, emulator: Emulator,
                                                  namespace: str) -> None:
    emulator.store.create("configmaps", {"metadata": {"name": "stuck",
                                                      "finalizers": ["x/keep"]}},
                          namespace=namespace)
    with pytest.raises(WaitTimeout, match=r"still exists after 0.5 s.*x/keep"):
        kapply.delete(kube, "configmaps", "stuck", namespace=namespace, wait=True,
                      timeout=0.5)
    obj = emulator.store.get("configmaps", "stuck", namespace=namespace)
    obj["metadata"]["finalizers"] = []
    emulator.store.update("configmaps", obj, namespace=namespace)


def set_ready(emulator: Emulator, ns: str, status: str, reason: str = "",
              delay: float = 0.0) -> threading.Thread:
    def go() -> None:
        time.sleep(delay)
        obj = emulator.store.get("serving.kserve.io/inferenceservices", "sk", namespace=ns)
        obj["status"] = {"conditions": [{"type": "Ready", "status": status, "reason": reason,
                                         "message": "waiting for the predictor"}]}
        emulator.store.update("serving.kserve.io/inferenceservices", obj, namespace=ns,
                              subresource="status")
    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


def test_wait_isvc_ready_returns_once_ready(kube: Kube, emulator: Emulator,
                                            namespace: str) -> None:
    kapply.apply(kube, kapply.load_manifests(ISVC_YAML)[0], namespace=namespace)
    t = set_ready(emulator, namespace, "True", delay=0.3)
    t0 = time.monotonic()
    obj = wait_isvc_ready(kube, "sk", namespace, timeout=5)
    assert 0.25 < time.monotonic() - t0 < 3
    assert obj["status"]["conditions"][0]["status"] == "True"
    t.join()


def test_wait_timeout_names_the_last_condition(kube: Kube, emulator: Emulator,
                                               namespace: str) -> None:
    kapply.apply(kube, kapply.load_manifests(ISVC_YAML)[0], namespace=namespace)
    set_ready(emulator, namespace, "False", reason="PredictorNotReady").join()
    with pytest.raises(WaitTimeout, match=r"InferenceService .*/sk: Ready=True not reached "
                       r"within 0.4 s; last seen: Ready=False, reason PredictorNotReady"):
        wait_condition(kube, INFERENCE_SERVICES, "sk", namespace, timeout=0.4)


def test_unknown_kinds_are_found_by_discovery(kube: Kube, namespace: str) -> None:
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}}
    out = kapply.apply(kube, lease, namespace=namespace)
    assert out["spec"]["holderIdentity"] == "me"
    with pytest.raises(UserError, match="does not serve example.com/v1"):
        kapply.apply(kube, {**lease, "apiVersion": "example.com/v1"}, namespace=namespace)


def test_crd_detection_names_what_is_missing(kube: Kube, tmp_path: Path) -> None:
    if os.environ.get("HARNESS_KUBE_KUBECONFIG"):  # a live cluster
        crd_list = kube.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
        served = {c["metadata"]["name"] for c in crd_list["items"]}
        reason = crds.skip_reason(kube) or ""
        if "inferenceservices.serving.kserve.io" in served:
            # the upstream cluster's session: tests/upstream/test_serving_install.py put
            # Knative's and KServe's CRDs on it before this suite ran
            assert "services.serving.knative.dev" in served
            assert reason == "", reason
        else:   # bare: nothing installed
            assert reason.startswith("KServe is not installed (missing CRD "
                                     "inferenceservices.serving.kserve.io); Knative Serving "
                                     "is not installed (missing CRD ")
            assert reason.endswith(f" on context {kube.context!r}")
    else:
        assert crds.skip_reason(kube) is None
    registry = Registry(types=[t for t in BUILTIN_RESOURCES if t.group != "serving.kserve.io"])
    with Emulator(store=Store(registry=registry)) as bare:
        api, ctx = load_api_client(bare.write_kubeconfig(tmp_path / "kc"))
        with Kube(api, context=ctx) as k:
            reason = crds.skip_reason(k)
            assert reason == ("KServe is not installed (missing CRD "
                              "inferenceservices.serving.kserve.io) on context 'harness-local'")
            assert crds.skip_reason(k, products=("Knative Serving",)) is None


def service(emulator: Emulator, ns: str, name: str, spec: dict, status: dict | None) -> None:
    if emulator.store.try_get("namespaces", ns) is None:
        emulator.store.create("namespaces", {"metadata": {"name": ns}})
    if emulator.store.try_get("services", name, namespace=ns) is not None:
        emulator.store.delete("services", name, namespace=ns)
    svc = emulator.store.create("services", {"metadata": {"name": name}, "spec": spec},
                                namespace=ns)
    if status is not None:
        svc["status"] = status
        emulator.store.update("services", svc, namespace=ns, subresource="status")


def test_ingress_address_from_kourier_istio_or_option(kube: Kube, emulator: Emulator) -> None:
    with pytest.raises(UserError, match="tried kourier-system/kourier, "
                       "istio-system/istio-ingressgateway.*--ingress-url"):
        knative.ingress_address(kube)
    assert knative.ingress_address(kube, "http://gw:8080/").url == "http://gw:8080"
    service(emulator, "istio-system", "istio-ingressgateway",
            {"type": "NodePort", "ports": [{"name": "status-port", "port": 15021},
                                           {"name": "http2", "port": 80, "nodePort": 31380}]},
            None)
    node = emulator.store.list("nodes")["items"][0]
    addr = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    ip = addr.get("ExternalIP") or addr["InternalIP"]
    got = knative.ingress_address(kube)
    assert (got.url, got.gateway) == (f"http://{ip}:31380", "istio")
    service(emulator, "kourier-system", "kourier",
            {"type": "LoadBalancer", "ports": [{"name": "http2", "port": 80}]},
            {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}})
    got = knative.ingress_address(kube)
    assert (got.url, got.gateway, got.source) == ("http://lb.example.com:80", "kourier",
                                                  "kourier-system/kourier LoadBalancer")
    for ns in ("istio-system", "kourier-system"):
        emulator.store.delete("namespaces", ns)
