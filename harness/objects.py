"""Kubernetes objects as plain dicts: the helpers and names every layer shares.

A leaf: it imports nothing from the harness, so the cluster access (:mod:`harness.kube`),
the recorder (:mod:`harness.observe`), the suites, the checks and the emulator all read
objects the same way.

* Status conditions: :func:`get_condition`, :func:`condition_status`, :func:`condition_is`.
* Times: :func:`parse_time` (RFC 3339 -> epoch seconds) and :func:`format_time` (the
  other way, whole seconds as the API server writes ``metav1.Time``).
* Quantities: :func:`parse_quantity` (``2Gi``, ``500m``, ``1.5``): Kubernetes' own
  parser (``kubernetes.utils.parse_quantity``), as a ``Decimal``.
* JSON merge patch (RFC 7386): :func:`merge_patch`.
* The Knative Serving and KServe label and annotation names the harness reads or writes.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

# ---------------------------------------------------------------- labels and annotations

KNATIVE_SERVING = "serving.knative.dev/"
SERVICE_LABEL = KNATIVE_SERVING + "service"
CONFIGURATION_LABEL = KNATIVE_SERVING + "configuration"
CONFIGURATION_UID_LABEL = KNATIVE_SERVING + "configurationUID"
CONFIGURATION_GENERATION_LABEL = KNATIVE_SERVING + "configurationGeneration"
REVISION_LABEL = KNATIVE_SERVING + "revision"
REVISION_UID_LABEL = KNATIVE_SERVING + "revisionUID"
ROUTING_STATE_LABEL = KNATIVE_SERVING + "routingState"
AUTOSCALING_PREFIX = "autoscaling.knative.dev/"
"""Revision annotations of the autoscaler (``autoscaling.knative.dev/<key>``)."""
AUTOSCALING_CLASS_ANNOTATION = AUTOSCALING_PREFIX + "class"
INGRESS_PROVIDER_LABEL = "networking.knative.dev/ingress-provider"

ISVC_LABEL = "serving.kserve.io/inferenceservice"
DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
STORAGE_URI_ANNOTATION = "serving.kserve.io/storage-initializer-sourceuri"

GPU_RESOURCE = "nvidia.com/gpu"

# ---------------------------------------------------------------- conditions


def get_condition(obj: Mapping[str, Any] | None, ctype: str) -> Mapping[str, Any] | None:
    """The status condition of type ``ctype`` (``status.conditions[]``), or None."""
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return cond  # type: ignore[no-any-return]
    return None


def condition_status(obj: Mapping[str, Any] | None, ctype: str) -> str:
    """``True``, ``False`` or ``Unknown`` (also when there is no such condition)."""
    cond = get_condition(obj, ctype)
    return "Unknown" if cond is None else str(cond.get("status", "Unknown"))


def condition_is(obj: Mapping[str, Any] | None, ctype: str, status: str = "True") -> bool:
    """Condition ``ctype`` exists and has ``status``."""
    cond = get_condition(obj, ctype)
    return cond is not None and str(cond.get("status")) == status


# ---------------------------------------------------------------- times


def parse_time(text: Any) -> float | None:
    """RFC 3339 (``2026-01-01T00:00:00Z``, fractions allowed) -> epoch seconds, or None."""
    if not text:
        return None
    if isinstance(text, int | float):
        return float(text)
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def format_time(t: float | None = None) -> str:
    """Epoch seconds (default: now) -> ``2026-01-01T00:00:00Z``, as ``metav1.Time``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if t is None else t))


# ---------------------------------------------------------------- quantities


def parse_quantity(raw: Any) -> Decimal:
    """A Kubernetes quantity (``2Gi``, ``500m``, ``1.5``, ``4``), exactly.

    Kubernetes' own parser (``kubernetes.utils.parse_quantity``); ``ValueError`` for text
    that is not a quantity."""
    from kubernetes.utils import parse_quantity as k8s_parse_quantity

    return Decimal(k8s_parse_quantity(raw))


# ---------------------------------------------------------------- merge patch


def merge_patch(doc: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch; a non-object patch replaces the document.

    Mappings merge recursively, a ``None`` (JSON null) value deletes the key; neither
    argument is changed."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out = copy.deepcopy(dict(doc)) if isinstance(doc, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out
