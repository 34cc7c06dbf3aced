"""Is KServe / Knative installed? Suites that need a missing API skip with the reason.

Detection uses API discovery (``GET /apis/<group>/<version>``), which every
authenticated user may read, rather than the CustomResourceDefinition objects (which
least-privilege RBAC does not grant). :func:`skip_reason` returns one sentence naming
what is missing, or None when everything needed is served.
"""

from __future__ import annotations

from collections.abc import Iterable

from kubernetes.client.exceptions import ApiException

from harness.kube.client import Kube
from harness.kube.resources import (
    CONFIGURATIONS,
    INFERENCE_SERVICES,
    KSERVICES,
    PODAUTOSCALERS,
    REVISIONS,
    Resource,
)

KSERVE_RESOURCES: tuple[Resource, ...] = (INFERENCE_SERVICES,)
KNATIVE_RESOURCES: tuple[Resource, ...] = (KSERVICES, CONFIGURATIONS, REVISIONS,
                                           PODAUTOSCALERS)
REQUIRED: dict[str, tuple[Resource, ...]] = {"KServe": KSERVE_RESOURCES,
                                             "Knative Serving": KNATIVE_RESOURCES}


def served(kube: Kube, resource: Resource) -> bool:
    """True if the API server serves ``resource`` (its group/version lists the plural)."""
    path = f"/apis/{resource.group}/{resource.version}" if resource.group else \
        f"/api/{resource.version}"
    try:
        doc = kube.request("GET", path)
    except ApiException as exc:
        if exc.status in (404, 503):  # 503: an aggregated API that is down
            return False
        raise
    return any(r.get("name") == resource.plural for r in (doc or {}).get("resources") or [])


def missing(kube: Kube, resources: Iterable[Resource]) -> list[str]:
    """The CRD names (``plural.group``) of those not served."""
    return [r.crd_name for r in resources if not served(kube, r)]


def installed(kube: Kube) -> dict[str, list[str]]:
    """Product -> its missing CRDs (empty list: installed)."""
    return {product: missing(kube, res) for product, res in REQUIRED.items()}


def skip_reason(kube: Kube, products: Iterable[str] = ("KServe", "Knative Serving")
                ) -> str | None:
    """Why a suite cannot run here (missing CRDs named), or None if it can."""
    state = installed(kube)
    gaps = [f"{p} is not installed (missing CRD {', '.join(state[p])})"
            for p in products if state.get(p)]
    if not gaps:
        return None
    where = f" on context {kube.context!r}" if kube.context else ""
    return "; ".join(gaps) + where
