"""What the suites need of a cluster beyond KServe and Knative being installed, in one place:
the kind bring-up sets it up, the emulator starts with it, the preflight checks it.

- ``config-features`` (``knative-serving``): the podspec flags the reference
  InferenceServices need (Knative 1.21 defaults each to ``disabled`` and its webhook then
  refuses the Knative Service KServe makes): ``kubernetes.podspec-nodeselector``
  (``cpu-small``), ``kubernetes.podspec-affinity`` and ``kubernetes.podspec-tolerations``
  (``gpu-rtx5000``);
- ``config-observability`` (``knative-serving``): ``metrics-protocol: prometheus``, so
  that the autoscaler exports ``kn_revision_panic_mode`` (Knative 1.19+ defaults to
  ``none`` and reads it once at start-up);
- the serving runtime for ``modelFormat: harness-linear``
  (``fixtures/runtimes/harness-linear.yaml``), as a ``ClusterServingRuntime`` or, on a
  shared cluster, as a namespaced ``ServingRuntime`` (:func:`serving_runtime`).
"""

from __future__ import annotations

import copy
from typing import Any

from harness.files import data_path, read_yaml

KNATIVE_NAMESPACE = "knative-serving"
FEATURES_CONFIGMAP = "config-features"
OBSERVABILITY_CONFIGMAP = "config-observability"
PODSPEC_FLAGS = {"nodeSelector": "kubernetes.podspec-nodeselector",
                 "affinity": "kubernetes.podspec-affinity",
                 "tolerations": "kubernetes.podspec-tolerations"}
FEATURES = {flag: "enabled" for flag in PODSPEC_FLAGS.values()}
METRICS_PROTOCOL = "metrics-protocol"
OBSERVABILITY = {METRICS_PROTOCOL: "prometheus"}
MODEL_FORMAT = "harness-linear"
RUNTIME_FILE = data_path("fixtures", "runtimes", f"{MODEL_FORMAT}.yaml")


def cluster_serving_runtime() -> dict[str, Any]:
    """The ``ClusterServingRuntime`` manifest (``fixtures/runtimes/harness-linear.yaml``)."""
    return dict(read_yaml(RUNTIME_FILE))


def serving_runtime(namespace: str | None = None) -> dict[str, Any]:
    """The same runtime as a namespaced ``ServingRuntime``."""
    doc = copy.deepcopy(cluster_serving_runtime())
    doc["kind"] = "ServingRuntime"
    if namespace:
        doc["metadata"]["namespace"] = namespace
    return doc


def flag_allows(value: str | None) -> bool:
    """A podspec flag lets its field through when ``enabled`` or ``allowed`` (any case);
    ``disabled``, unset or anything else (Knative keeps its default, disabled) does not."""
    return str(value or "disabled").lower() in ("enabled", "allowed")


def runtime_supports(spec: dict[str, Any], model_format: str = MODEL_FORMAT) -> bool:
    """True if a runtime spec auto-selects ``model_format`` (not disabled)."""
    if spec.get("disabled"):
        return False
    return any(f.get("name") == model_format and f.get("autoSelect") is True
               for f in spec.get("supportedModelFormats") or [])
