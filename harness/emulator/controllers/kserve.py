"""The KServe controller: InferenceService -> Knative Service ``<isvc>-predictor``, and the
InferenceService's status from what Knative reports (``kserve-locust-kind.md`` §2).

What reaches the Knative Service's revision template:

- annotations of the InferenceService (minus KServe's disallow list) and of
  ``predictor.annotations``; then KServe's overrides: ``autoscaling.knative.dev/class`` =
  KPA unless set, ``/target`` and ``/metric`` from ``scaleTarget``/``scaleMetric``,
  ``/min-scale`` **always** (``minReplicas``, 1 when unset; a min-scale annotation alone is
  ignored), ``/max-scale`` from ``maxReplicas`` when non-zero;
- labels of the InferenceService and ``predictor.labels``, plus
  ``serving.kserve.io/inferenceservice`` and ``component=predictor``;
- ``containerConcurrency``, ``timeout`` -> ``timeoutSeconds``, the pod spec fields
  (``nodeSelector``, ``affinity``, ``tolerations``, ...), the ``kserve-container`` (for
  ``predictor.model``: the serving runtime's container merged with the model's, see
  :mod:`~harness.emulator.controllers.runtimes`; else the custom ``containers``) and, with a
  ``storageUri``, the
  ``storage-initializer`` init container and its source-URI annotation (what KServe's
  pod mutator injects); for ``pvc://claim/path`` no init container but the claim as the
  volume ``kserve-pvc-source`` mounted read-only at ``/mnt/models`` with ``subPath: path``,
  as KServe 0.20's mutator does.

A model whose format no runtime supports gets no Knative Service, as in KServe 0.20: a
Warning event ``InternalError`` ("no runtime found to support predictor with model type:
{harness-linear <nil>}") and ``status.modelStatus`` ``InvalidSpec`` / ``FailedToLoad`` with
``lastFailureInfo`` ``NoSupportingRuntime``. A Knative Service the Knative webhook refuses
(:mod:`~harness.emulator.admission`) gives the same event with the webhook's words and
``PredictorReady`` False. Runtimes created later are picked up (the controller watches
them).

Traffic (``createKnativeService``): 100 % to the latest revision, or, with
``predictor.canaryTrafficPercent`` p and a revision already rolled out, p % to the latest
revision and 100 - p % to ``latestRolledoutRevision`` (tag ``prev``).

Status: ``PredictorReady``, ``IngressReady``, ``Ready`` (+ ``LatestDeploymentReady``,
``RoutesReady``), ``status.url``, ``address.url``, ``components.predictor`` (with
``PropagateStatus``'s rollout bookkeeping: a latest ready revision that gets 100 % through
``latestRevision`` becomes ``latestRolledoutRevision``, the one before it
``previousRolledoutRevision``) and ``observedGeneration``.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable, Iterable
from typing import Any

from harness.emulator.api.status import ApiError
from harness.emulator.api.store import Store
from harness.emulator.api.subscriptions import WatchEvent
from harness.emulator.controllers.base import (
    Controller,
    apply,
    condition,
    owner_ref,
    set_status,
)
from harness.emulator.controllers.runtimes import (
    CLUSTER_SERVING_RUNTIMES,
    SERVING_RUNTIMES,
    NoRuntime,
    Runtime,
    runtime_container,
    select_runtime,
)
from harness.emulator.controllers.scheduler import record_event
from harness.objects import (
    AUTOSCALING_PREFIX,
    DEPLOYMENT_MODE_ANNOTATION,
    ISVC_LABEL,
    STORAGE_URI_ANNOTATION,
    condition_status,
)

ISVC = "serving.kserve.io/inferenceservices"
KSVC = "serving.knative.dev/services"
KPA_CLASS = "kpa.autoscaling.knative.dev"
MODEL_IMAGE = "harness-modelserver:0.1.0"   # fixtures/kind/versions.yaml modelserver.image
EVENT_SOURCE = "v1beta1Controllers"
"""The component KServe's manager records its InferenceService events as."""
STORAGE_INITIALIZER_IMAGE = "kserve/storage-initializer:v0.20.0"   # KServe v0.20.0's release
PVC_PREFIX = "pvc://"
PVC_SOURCE_VOLUME = "kserve-pvc-source"   # KServe's constants.PvcSourceMountName
DISALLOWED = ("kubectl.kubernetes.io/last-applied-configuration", STORAGE_URI_ANNOTATION,
              DEPLOYMENT_MODE_ANNOTATION, "serving.kserve.io/modelFormat")
POD_FIELDS = ("nodeSelector", "affinity", "tolerations", "serviceAccountName",
              "priorityClassName", "schedulerName", "topologySpreadConstraints", "volumes",
              "imagePullSecrets", "securityContext", "terminationGracePeriodSeconds",
              "runtimeClassName", "hostIPC", "dnsPolicy")
CONTAINER_FIELDS = ("image", "command", "args", "env", "resources", "ports", "readinessProbe",
                    "livenessProbe", "volumeMounts", "workingDir")


def predictor_name(isvc_name: str) -> str:
    return f"{isvc_name}-predictor"


def revision_template(isvc: dict[str, Any], runtime: Runtime | None = None) -> dict[str, Any]:
    """The Knative Service ``spec.template`` KServe makes of an InferenceService (with
    ``runtime``, the serving runtime chosen for ``predictor.model``)."""
    meta = isvc["metadata"]
    pred = (isvc.get("spec") or {}).get("predictor") or {}
    annotations = {k: str(v) for k, v in (meta.get("annotations") or {}).items()
                   if k not in DISALLOWED}
    annotations.update({k: str(v) for k, v in (pred.get("annotations") or {}).items()})
    annotations.setdefault(AUTOSCALING_PREFIX + "class", KPA_CLASS)
    if pred.get("scaleTarget") is not None:
        annotations[AUTOSCALING_PREFIX + "target"] = str(pred["scaleTarget"])
    if pred.get("scaleMetric") is not None:
        annotations[AUTOSCALING_PREFIX + "metric"] = str(pred["scaleMetric"])
    min_replicas = pred.get("minReplicas")
    annotations[AUTOSCALING_PREFIX + "min-scale"] = str(1 if min_replicas is None else min_replicas)
    annotations.pop(AUTOSCALING_PREFIX + "minScale", None)
    if pred.get("maxReplicas"):
        annotations[AUTOSCALING_PREFIX + "max-scale"] = str(pred["maxReplicas"])
    labels = {**(meta.get("labels") or {}), **(pred.get("labels") or {}),
              ISVC_LABEL: meta["name"], "component": "predictor"}

    model = pred.get("model")
    storage_uri = None
    if isinstance(model, dict):
        storage_uri = model.get("storageUri")
        own = {f: copy.deepcopy(model[f]) for f in CONTAINER_FIELDS if f in model}
        if runtime is not None:
            container = runtime_container(runtime, own, meta)
        else:
            container = {"name": "kserve-container", "image": MODEL_IMAGE, **own}
    else:
        containers = pred.get("containers") or [{"name": "kserve-container",
                                                 "image": MODEL_IMAGE}]
        container = copy.deepcopy(containers[0])
        container["name"] = "kserve-container"
        for item in container.get("env") or []:
            if item.get("name") == "STORAGE_URI":
                storage_uri = item.get("value")
    container.setdefault("ports", [{"containerPort": 8080, "name": "http1",
                                    "protocol": "TCP"}])
    spec: dict[str, Any] = {"containers": [container]}
    if storage_uri and str(storage_uri).startswith(PVC_PREFIX):
        # KServe mounts the claim itself (no init container): subPath the path in it
        annotations[STORAGE_URI_ANNOTATION] = str(storage_uri)
        claim, _, sub = str(storage_uri)[len(PVC_PREFIX):].partition("/")
        container.setdefault("volumeMounts", []).append(
            {"name": PVC_SOURCE_VOLUME, "mountPath": "/mnt/models", "subPath": sub,
             "readOnly": True})
        spec.setdefault("volumes", []).append(
            {"name": PVC_SOURCE_VOLUME, "persistentVolumeClaim": {"claimName": claim}})
    elif storage_uri:
        annotations[STORAGE_URI_ANNOTATION] = str(storage_uri)
        container.setdefault("volumeMounts", []).append(
            {"name": "kserve-provision-location", "mountPath": "/mnt/models",
             "readOnly": True})
        spec["initContainers"] = [{
            "name": "storage-initializer", "image": STORAGE_INITIALIZER_IMAGE,
            "args": [str(storage_uri), "/mnt/models"],
            "resources": {"requests": {"cpu": "100m", "memory": "100Mi"},
                          "limits": {"cpu": "1", "memory": "1Gi"}},
            "volumeMounts": [{"name": "kserve-provision-location",
                              "mountPath": "/mnt/models"}]}]
        spec.setdefault("volumes", []).append({"name": "kserve-provision-location",
                                               "emptyDir": {}})
    for f in POD_FIELDS:
        if f in pred:
            if f == "volumes":
                spec.setdefault("volumes", []).extend(copy.deepcopy(pred[f]))
            else:
                spec[f] = copy.deepcopy(pred[f])
    if pred.get("containerConcurrency") is not None:
        spec["containerConcurrency"] = int(pred["containerConcurrency"])
    if pred.get("timeout") is not None:
        spec["timeoutSeconds"] = int(pred["timeout"])
        spec["responseStartTimeoutSeconds"] = int(pred["timeout"])
    return {"metadata": {"labels": labels, "annotations": annotations}, "spec": spec}


def traffic_targets(canary: Any, rolled_out: str | None) -> list[dict[str, Any]]:
    """The Knative Service's ``traffic`` for a canary percent and the last rolled-out
    revision (KServe's ``createKnativeService``)."""
    if canary is None or not rolled_out:
        return [{"latestRevision": True, "percent": 100}]
    p = int(canary)
    targets: list[dict[str, Any]] = [{"latestRevision": True, "percent": p}]
    if p < 100:
        targets.append({"tag": "prev", "revisionName": rolled_out, "latestRevision": False,
                        "percent": 100 - p})
    return targets


def rollout_status(old: dict[str, Any], kst: dict[str, Any]) -> dict[str, str]:
    """``latestRolledoutRevision`` / ``previousRolledoutRevision`` after a Knative Service
    status (KServe's ``PropagateStatus``)."""
    latest_rolled = old.get("latestRolledoutRevision", "")
    previous = old.get("previousRolledoutRevision", "")
    ready = kst.get("latestReadyRevisionName", "")
    created = kst.get("latestCreatedRevisionName", "")
    per_revision: dict[str, int] = {}
    for t in kst.get("traffic") or []:
        per_revision[t.get("revisionName", "")] = per_revision.get(
            t.get("revisionName", ""), 0) + int(t.get("percent") or 0)
    for t in kst.get("traffic") or []:
        if t.get("revisionName") != ready or not t.get("latestRevision"):
            continue
        pct = int(t.get("percent") or 0)
        if latest_rolled != ready:
            if pct == 100:
                previous, latest_rolled = latest_rolled, ready
        elif ready == created and pct < 100 and per_revision.get(ready) == 100 and previous:
            latest_rolled = previous  # rolled back
    return {k: v for k, v in (("latestRolledoutRevision", latest_rolled),
                              ("previousRolledoutRevision", previous)) if v}


class KServeController(Controller):
    """Reconciles InferenceServices into Knative Services and reflects their status."""

    name = "kserve"
    resources = (ISVC, KSVC, SERVING_RUNTIMES, CLUSTER_SERVING_RUNTIMES)

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._reported: set[tuple[Any, ...]] = set()

    def keys_for(self, resource: str, event: WatchEvent) -> Iterable[Hashable]:
        meta = event.object["metadata"]
        if resource in (SERVING_RUNTIMES, CLUSTER_SERVING_RUNTIMES):
            ns = meta.get("namespace") if resource == SERVING_RUNTIMES else None
            return [(o["metadata"]["namespace"], o["metadata"]["name"])
                    for o in self.store.list(ISVC, namespace=ns)["items"]]
        if resource == KSVC:
            owner = (meta.get("labels") or {}).get(ISVC_LABEL)
            return [(meta["namespace"], owner)] if owner else []
        return [(meta["namespace"], meta["name"])]

    async def reconcile(self, key: Hashable) -> None:
        ns, name = key  # type: ignore[misc]
        isvc = self.store.try_get(ISVC, name, namespace=ns)
        if isvc is None or isvc["metadata"].get("deletionTimestamp"):
            return
        runtime = None
        model = ((isvc.get("spec") or {}).get("predictor") or {}).get("model")
        if isinstance(model, dict):
            chosen = select_runtime(self.store, ns, model)
            if isinstance(chosen, NoRuntime):
                self._refused(isvc, chosen)
                return
            runtime = chosen
        ksvc_name = predictor_name(name)
        pred = (isvc.get("spec") or {}).get("predictor") or {}
        rolled = (((isvc.get("status") or {}).get("components") or {}).get(
            "predictor") or {}).get("latestRolledoutRevision")
        desired = {
            "apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": ksvc_name, "namespace": ns,
                         "labels": {ISVC_LABEL: name, "component": "predictor"},
                         "annotations": {DEPLOYMENT_MODE_ANNOTATION: "Serverless"},
                         "ownerReferences": [owner_ref(isvc)]},
            "spec": {"template": revision_template(isvc, runtime),
                     "traffic": traffic_targets(pred.get("canaryTrafficPercent"), rolled)},
        }
        try:
            ksvc = apply(self.store, KSVC, desired)
        except ApiError as exc:  # the Knative webhook refused it
            self._failed(isvc, exc.message)
            return
        self._status(isvc, ksvc, runtime)

    def _event_once(self, isvc: dict[str, Any], message: str) -> None:
        key = (isvc["metadata"]["namespace"], isvc["metadata"]["name"],
               isvc["metadata"].get("generation"), message)
        if key not in self._reported:
            self._reported.add(key)
            record_event(self.store, isvc, "Warning", "InternalError", message,
                         EVENT_SOURCE)

    def _refused(self, isvc: dict[str, Any], why: NoRuntime) -> None:
        """KServe 0.20 when no runtime serves the model: an event, the model status."""
        self._event_once(isvc, why.error)
        old = isvc.get("status") or {}
        status = copy.deepcopy(old)
        status.setdefault("observedGeneration", isvc["metadata"].get("generation", 1))
        model_status = status.setdefault("modelStatus", {})
        model_status["transitionStatus"] = "InvalidSpec"
        model_status.setdefault("states", {})["targetModelState"] = "FailedToLoad"
        model_status["lastFailureInfo"] = {"reason": why.reason, "message": why.message}
        set_status(self.store, ISVC, isvc, status)

    def _failed(self, isvc: dict[str, Any], message: str) -> None:
        """The predictor's Knative Service was refused: the event, PredictorReady False."""
        self._event_once(isvc, message)
        prev = (isvc.get("status") or {}).get("conditions") or []
        status = copy.deepcopy(isvc.get("status") or {})
        status["observedGeneration"] = isvc["metadata"].get("generation", 1)
        status["conditions"] = [
            condition("PredictorReady", "False", "ReconcileFailed", message, prev),
            condition("Ready", "False", "PredictorNotReady", "", prev)]
        set_status(self.store, ISVC, isvc, status)

    def _status(self, isvc: dict[str, Any], ksvc: dict[str, Any],
                runtime: Runtime | None = None) -> None:
        meta = isvc["metadata"]
        old = isvc.get("status") or {}
        prev = old.get("conditions") or []
        kst = ksvc.get("status") or {}
        ready = condition_status(ksvc, "Ready") == "True"
        cfg_ready = condition_status(ksvc, "ConfigurationsReady")
        routes_ready = condition_status(ksvc, "RoutesReady")
        url = kst.get("url")
        host = f"{meta['name']}.{meta['namespace']}"
        domain = url.split(".", 2)[2] if url and url.count(".") >= 2 else None

        def c(type_: str, value: str, reason: str = "", msg: str = "") -> dict[str, Any]:
            return condition(type_, value, reason, msg, prev)

        pred_reason = "" if ready else "RevisionMissing"
        conditions = [
            c("IngressReady", "True" if routes_ready == "True" else "False",
              "" if routes_ready == "True" else "RoutesNotReady"),
            c("LatestDeploymentReady", "True" if cfg_ready == "True" else "Unknown"),
            c("PredictorConfigurationReady", "True" if cfg_ready == "True" else "Unknown"),
            c("PredictorReady", "True" if ready else "False", pred_reason,
              "" if ready else "Revision is not ready yet"),
            c("PredictorRouteReady", routes_ready if routes_ready != "Unknown" else "Unknown"),
            c("Ready", "True" if ready else "False", "" if ready else "PredictorNotReady"),
            c("RoutesReady", routes_ready),
        ]
        predictor: dict[str, Any] = {}
        for src, dst in (("latestCreatedRevisionName", "latestCreatedRevision"),
                         ("latestReadyRevisionName", "latestReadyRevision")):
            if kst.get(src):
                predictor[dst] = kst[src]
        predictor.update(rollout_status(
            ((old.get("components") or {}).get("predictor") or {}), kst))
        if kst.get("traffic"):
            predictor["traffic"] = kst["traffic"]
        if url:
            predictor["url"] = url
            predictor["address"] = {"url": f"http://{ksvc['metadata']['name']}."
                                           f"{meta['namespace']}.svc.cluster.local"}
        status: dict[str, Any] = {
            "observedGeneration": meta.get("generation", 1),
            "deploymentMode": "Serverless",
            "conditions": conditions,
            "components": {"predictor": predictor},
            "modelStatus": {
                "transitionStatus": "UpToDate" if ready else "InProgress",
                "states": {"activeModelState": "Loaded" if ready else "Pending",
                           "targetModelState": "Loaded"},
                "copies": {"failedCopies": 0}},
        }
        if runtime is not None:
            status["clusterServingRuntimeName" if runtime.cluster else "servingRuntimeName"] = (
                runtime.name)
        if url and domain:
            status["url"] = f"http://{host}.{domain}"
            status["address"] = {"url": f"http://{meta['name']}.{meta['namespace']}"
                                        ".svc.cluster.local"}
        was_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in prev)
        if ready and not was_ready:
            record_event(self.store, isvc, "Normal", "InferenceServiceReady",
                         f"InferenceService [{meta['name']}] is Ready", EVENT_SOURCE)
        elif was_ready and not ready:
            record_event(self.store, isvc, "Warning", "InferenceServiceNotReady",
                         f"InferenceService [{meta['name']}] is no longer Ready because of: "
                         + ", ".join(c["type"] for c in conditions if c["status"] == "False"),
                         EVENT_SOURCE)
        set_status(self.store, ISVC, isvc, status)
