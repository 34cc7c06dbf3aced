"""Knative Serving's validating webhook, as far as ``config-features`` goes (Knative 1.21).

Knative's webhook (``validation.webhook.serving.knative.dev``) masks the pod spec of a
Service's or Configuration's ``spec.template`` and of a Revision with the podspec feature
flags of the ``config-features`` ConfigMap in ``knative-serving`` (``pkg/apis/config/
features.go``: every flag below defaults to ``disabled``; ``enabled`` and ``allowed`` let
the field through), read live. A field that is set while its flag is disabled is refused
with knative.dev/pkg's ``ErrDisallowedFields`` ("must not set the field(s)", paths sorted
and joined by ", "), wrapped by the webhook and the API server::

    admission webhook "validation.webhook.serving.knative.dev" denied the request:
    validation failed: must not set the field(s): spec.template.spec.nodeSelector

as a 400 BadRequest. :func:`install` registers it on a :class:`~harness.emulator.api.store.Store`.
"""

from __future__ import annotations

from typing import Any

from harness.emulator.api.registry import KNATIVE, ResourceType
from harness.emulator.api.status import ApiError
from harness.emulator.api.store import Store
from harness.prerequisites import flag_allows

WEBHOOK = "validation.webhook.serving.knative.dev"
FEATURES = "config-features"
NAMESPACE = "knative-serving"
# pod spec field -> its config-features flag (all default to disabled)
POD_SPEC_FLAGS = {
    "affinity": "kubernetes.podspec-affinity",
    "hostAliases": "kubernetes.podspec-hostaliases",
    "hostIPC": "kubernetes.podspec-hostipc",
    "hostNetwork": "kubernetes.podspec-hostnetwork",
    "hostPID": "kubernetes.podspec-hostpid",
    "nodeSelector": "kubernetes.podspec-nodeselector",
    "priorityClassName": "kubernetes.podspec-priorityclassname",
    "runtimeClassName": "kubernetes.podspec-runtimeclassname",
    "schedulerName": "kubernetes.podspec-schedulername",
    "shareProcessNamespace": "kubernetes.podspec-shareprocessnamespace",
    "tolerations": "kubernetes.podspec-tolerations",
    "topologySpreadConstraints": "kubernetes.podspec-topologyspreadconstraints",
}


def _set(value: Any) -> bool:
    return value not in (None, False, "", {}, [])


def disallowed_fields(pod_spec: dict[str, Any], features: dict[str, str]) -> list[str]:
    """The pod spec's fields that ``features`` does not allow (json names, sorted)."""
    return sorted(f for f, flag in POD_SPEC_FLAGS.items()
                  if _set(pod_spec.get(f)) and not flag_allows(features.get(flag)))


def refusal(paths: list[str]) -> ApiError:
    return ApiError(400, "BadRequest",
                    f'admission webhook "{WEBHOOK}" denied the request: validation failed: '
                    f"must not set the field(s): {', '.join(sorted(paths))}")


class KnativeWebhook:
    """The webhook as a store admission hook (reads ``config-features`` on every call)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def features(self) -> dict[str, str]:
        cm = self.store.try_get("configmaps", FEATURES, namespace=NAMESPACE)
        return {str(k): str(v) for k, v in ((cm or {}).get("data") or {}).items()}

    def __call__(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        if rtype.group != KNATIVE:
            return
        spec = obj.get("spec") or {}
        if rtype.plural in ("services", "configurations"):
            prefix, pod_spec = "spec.template.spec", ((spec.get("template") or {}).get("spec")
                                                      or {})
        elif rtype.plural == "revisions":
            prefix, pod_spec = "spec", spec
        else:
            return
        bad = disallowed_fields(pod_spec, self.features())
        if bad:
            raise refusal([f"{prefix}.{f}" for f in bad])


def install(store: Store) -> KnativeWebhook:
    hook = KnativeWebhook(store)
    store.admission.append(hook)
    return hook
