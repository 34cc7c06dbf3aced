"""The emulator refuses what KServe 0.20 and Knative 1.21 refuse, with their words, and
starts as the kind bring-up leaves a cluster (runtime, config-features,
config-observability), so the default run passes:

- no serving runtime for the model format: no Knative Service, the ``InternalError`` event
  "no runtime found to support predictor with model type: {harness-linear <nil>}" and the
  model status ``InvalidSpec``/``FailedToLoad``/``NoSupportingRuntime`` (KServe
  ``components/predictor.go``); a runtime created afterwards is picked up;
- runtime selection as KServe does it (``autoSelect``, ``protocolVersions``, namespaced
  before cluster runtimes, ``priority``);
- Knative's webhook refuses nodeSelector/affinity/tolerations while ``config-features``
  disables them ("must not set the field(s): ...", knative.dev/pkg ``ErrDisallowedFields``),
  read live;
- no autoscaler metrics unless ``config-observability`` says ``metrics-protocol:
  prometheus`` (Knative 1.19+ defaults to ``none``).
"""

from __future__ import annotations

import copy
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from harness.emulator.admission import install as install_webhook
from harness.emulator.api.status import ApiError
from harness.emulator.api.store import Store
from harness.emulator.controllers.runtimes import (
    CLUSTER_SERVING_RUNTIMES,
    SERVING_RUNTIMES,
    NoRuntime,
    select_runtime,
    supporting_runtimes,
)
from harness.emulator.local_cluster import LocalCluster
from harness.prerequisites import FEATURES, cluster_serving_runtime

ROOT = Path(__file__).resolve().parents[2]
ISVC = "serving.kserve.io/inferenceservices"
KSVC = "serving.knative.dev/services"
DISABLED = {flag: "disabled" for flag in FEATURES}


def fixture(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "fixtures" / "isvc" / f"{name}.yaml").read_text())


def wait_for(what: str, fn: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def events_of(cluster: LocalCluster, name: str) -> list[dict[str, Any]]:
    return [e for e in cluster.store.list("events", namespace="default")["items"]
            if e["involvedObject"]["name"] == name]


# ------------------------------------------------------------------ serving runtimes


def test_no_runtime_for_the_model_format_is_refused_as_kserve_does() -> None:
    with LocalCluster(profile="fast", runtime=False) as cluster:
        cluster.store.create(ISVC, fixture("cpu-small"), namespace="default")
        isvc = wait_for("the model status", lambda: (cluster.store.get(
            ISVC, "cpu-small", namespace="default").get("status") or {}).get("modelStatus")
            and cluster.store.get(ISVC, "cpu-small", namespace="default"))
        model = isvc["status"]["modelStatus"]
        assert model["transitionStatus"] == "InvalidSpec"
        assert model["states"]["targetModelState"] == "FailedToLoad"
        assert model["lastFailureInfo"] == {
            "reason": "NoSupportingRuntime",
            "message": "No runtime found to support specified framework/version"}
        (event,) = wait_for("the event", lambda: events_of(cluster, "cpu-small"))
        assert (event["type"], event["reason"], event["message"]) == (
            "Warning", "InternalError",
            "no runtime found to support predictor with model type: {harness-linear <nil>}")
        time.sleep(0.5)
        assert cluster.store.try_get(KSVC, "cpu-small-predictor", namespace="default") is None
        # the runtime arrives: KServe picks it up and creates the Knative Service
        cluster.store.create(CLUSTER_SERVING_RUNTIMES, cluster_serving_runtime())
        ksvc = wait_for("the Knative Service", lambda: cluster.store.try_get(
            KSVC, "cpu-small-predictor", namespace="default"))
        (c,) = ksvc["spec"]["template"]["spec"]["containers"]
        assert c["args"] == ["--model_name=cpu-small", "--model_dir=/mnt/models",
                             "--http_port=8080"]
        assert c["image"] == "harness-modelserver:0.1.0"
        assert {"name": "REQUEST_LATENCY", "value": "100ms"} in c["env"]
        assert wait_for("the runtime's name in the status", lambda: (cluster.store.get(
            ISVC, "cpu-small", namespace="default").get("status") or {}).get(
            "clusterServingRuntimeName")) == "harness-linear"


def _runtime(name: str, *, auto: bool = True, protocols: list[str] | None = None,
             priority: int | None = None, kind: str = "ClusterServingRuntime"
             ) -> dict[str, Any]:
    doc = copy.deepcopy(cluster_serving_runtime())
    doc["kind"] = kind
    doc["metadata"] = {"name": name}
    fmt = doc["spec"]["supportedModelFormats"][0]
    fmt["autoSelect"] = auto
    if priority is None:
        fmt.pop("priority", None)
    else:
        fmt["priority"] = priority
    if protocols is not None:
        doc["spec"]["protocolVersions"] = protocols
    return doc


def test_runtime_selection_follows_kserve() -> None:
    store = Store()
    v2 = {"modelFormat": {"name": "harness-linear"}, "protocolVersion": "v2"}
    store.create(CLUSTER_SERVING_RUNTIMES, _runtime("not-auto", auto=False))
    store.create(CLUSTER_SERVING_RUNTIMES, _runtime("v1-only", protocols=["v1"]))
    assert supporting_runtimes(store, "default", v2) == []
    why = select_runtime(store, "default", v2)
    assert isinstance(why, NoRuntime) and why.reason == "NoSupportingRuntime"
    # an explicit runtime needs no autoSelect, but must speak the protocol
    assert select_runtime(store, "default", {**v2, "runtime": "not-auto"}).name == "not-auto"
    refused = select_runtime(store, "default", {**v2, "runtime": "v1-only"})
    assert isinstance(refused, NoRuntime) and refused.message == (
        "Specified runtime does not support specified protocol version")
    missing = select_runtime(store, "default", {**v2, "runtime": "nope"})
    assert isinstance(missing, NoRuntime) and missing.reason == "RuntimeNotRecognized"
    # priority orders cluster runtimes; a namespaced runtime comes before them all
    store.create(CLUSTER_SERVING_RUNTIMES, _runtime("low", priority=1))
    store.create(CLUSTER_SERVING_RUNTIMES, _runtime("high", priority=5))
    store.create(CLUSTER_SERVING_RUNTIMES, _runtime("unset"))
    assert [r.name for r in supporting_runtimes(store, "default", v2)] == [
        "high", "low", "unset"]
    store.create(SERVING_RUNTIMES, _runtime("mine", kind="ServingRuntime"),
                 namespace="default")
    chosen = select_runtime(store, "default", v2)
    assert (chosen.name, chosen.cluster) == ("mine", False)
    # a model format version must be listed by the runtime
    versioned = {"modelFormat": {"name": "harness-linear", "version": "2"}}
    assert select_runtime(store, "other", versioned).message == (
        "No runtime found to support specified framework/version")
    assert select_runtime(store, "other", versioned).error.endswith("{harness-linear 2}")


# ------------------------------------------------------------------ Knative's webhook


def _ksvc(isvc: dict[str, Any]) -> dict[str, Any]:
    from harness.emulator.controllers.kserve import revision_template

    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": "x"}, "spec": {"template": revision_template(isvc)}}


def test_knative_webhook_refuses_podspec_fields_while_config_features_disables_them() -> None:
    store = Store()
    install_webhook(store)
    store.create("namespaces", {"metadata": {"name": "knative-serving"}})
    cm = store.create("configmaps", {"metadata": {"name": "config-features"}, "data": {}},
                      namespace="knative-serving")
    with pytest.raises(ApiError) as exc:
        store.create(KSVC, _ksvc(fixture("cpu-small")), namespace="default")
    assert (exc.value.code, exc.value.reason) == (400, "BadRequest")
    assert exc.value.message == (
        'admission webhook "validation.webhook.serving.knative.dev" denied the request: '
        "validation failed: must not set the field(s): spec.template.spec.nodeSelector")
    with pytest.raises(ApiError) as exc:
        store.create(KSVC, _ksvc(fixture("gpu-rtx5000")), namespace="default")
    assert exc.value.message.endswith(
        "must not set the field(s): spec.template.spec.affinity, "
        "spec.template.spec.tolerations")
    # read live: enabling the flags lets the same objects in ("allowed" counts too)
    cm["data"] = {"kubernetes.podspec-nodeselector": "enabled",
                  "kubernetes.podspec-affinity": "allowed",
                  "kubernetes.podspec-tolerations": "Enabled"}
    store.update("configmaps", cm, namespace="knative-serving")
    store.create(KSVC, _ksvc(fixture("cpu-small")), namespace="default")
    doc = _ksvc(fixture("gpu-rtx5000"))
    doc["metadata"]["name"] = "y"
    store.create(KSVC, doc, namespace="default")
    # an update that adds a disabled field is refused as well
    cm["data"]["kubernetes.podspec-tolerations"] = "disabled"
    store.update("configmaps", store.get("configmaps", "config-features",
                                         namespace="knative-serving") | {"data": cm["data"]},
                 namespace="knative-serving")
    ksvc = store.get(KSVC, "x", namespace="default")
    ksvc["spec"]["template"]["spec"]["tolerations"] = [{"key": "a", "operator": "Exists"}]
    with pytest.raises(ApiError, match="must not set the field.s.: "
                                       "spec.template.spec.tolerations$"):
        store.update(KSVC, ksvc, namespace="default")


def test_the_isvc_of_a_refused_knative_service_says_why() -> None:
    with LocalCluster(profile="fast", features=DISABLED) as cluster:
        cluster.store.create(ISVC, fixture("cpu-small"), namespace="default")
        text = ('admission webhook "validation.webhook.serving.knative.dev" denied the '
                "request: validation failed: must not set the field(s): "
                "spec.template.spec.nodeSelector")
        (event,) = wait_for("the event", lambda: events_of(cluster, "cpu-small"))
        assert (event["reason"], event["message"]) == ("InternalError", text)
        # the event is posted before the status is written: wait for that too
        def conditions() -> dict[str, Any]:
            isvc = cluster.store.get(ISVC, "cpu-small", namespace="default")
            got = {c["type"]: c for c in (isvc.get("status") or {}).get("conditions") or []}
            return got if got.get("PredictorReady", {}).get("status") == "False" else {}

        conds = wait_for("PredictorReady False", conditions)
        assert conds["PredictorReady"]["status"] == "False"
        assert conds["PredictorReady"]["message"] == text
        assert cluster.store.try_get(KSVC, "cpu-small-predictor", namespace="default") is None


# ------------------------------------------------------------------ autoscaler metrics


def _refuses(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_no_autoscaler_metrics_unless_config_observability_enables_them() -> None:
    with LocalCluster(profile="fast", observability={"metrics-protocol": "none"}) as cluster:
        assert cluster.metrics_url == ""
        svc = cluster.store.get("services", "autoscaler", namespace="knative-serving")
        assert _refuses(svc["spec"]["ports"][0]["port"])
        cm = cluster.store.get("configmaps", "config-observability",
                               namespace="knative-serving")
        assert cm["data"] == {"metrics-protocol": "none"}
        # read once at start-up, as the autoscaler does: a later change does nothing
        cm["data"] = {"metrics-protocol": "prometheus"}
        cluster.store.update("configmaps", cm, namespace="knative-serving")
        time.sleep(0.3)
        assert cluster.metrics_url == "" and _refuses(svc["spec"]["ports"][0]["port"])
    with LocalCluster(profile="fast") as cluster:  # as the kind bring-up sets it
        assert cluster.store.get("configmaps", "config-observability",
                                 namespace="knative-serving")["data"] == {
            "metrics-protocol": "prometheus"}
        doc = fixture("fixed-scale")
        cluster.store.create(ISVC, doc, namespace="default")
        text = wait_for("the panic gauge", lambda: (lambda t: "kn_revision_panic_mode{" in t
                                                    and t)(httpx.get(
                                                        cluster.metrics_url + "/metrics").text))
        assert ('kn_revision_panic_mode{k8s_namespace_name="default",kn_configuration_name='
                '"fixed-scale-predictor",kn_revision_name="fixed-scale-predictor-00001"'
                in text)


def test_kserve_yaml_without_its_namespace_is_refused_as_kubernetes_does() -> None:
    """KServe 0.20's kserve.yaml has no Namespace object: its namespaced objects are
    refused until ``kserve`` exists (hence the bring-up's namespace step)."""
    store = Store()
    cm = {"metadata": {"name": "inferenceservice-config"}, "data": {}}
    with pytest.raises(ApiError) as exc:
        store.create("configmaps", cm, namespace="kserve")
    assert (exc.value.code, exc.value.reason, exc.value.message) == (
        404, "NotFound", 'namespaces "kserve" not found')
    store.create("namespaces", {"metadata": {"name": "kserve"}})
    store.create("configmaps", cm, namespace="kserve")
