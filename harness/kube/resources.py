"""The resources the harness reads and writes, as data: group, version, plural, scope.

A :class:`Resource` builds its own REST paths (``/api/v1/namespaces/ns/pods/name``,
``/apis/serving.kserve.io/v1beta1/namespaces/ns/inferenceservices``), so every module
in :mod:`harness.kube` talks to core types and custom resources the same way.
:func:`resource_for` maps a manifest's ``apiVersion``/``kind`` to one, from the table
below or, for kinds not in it, from the API server's discovery document.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True)
class Resource:
    """One API resource: ``Resource("", "v1", "pods", "Pod")``."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def crd_name(self) -> str:
        """``inferenceservices.serving.kserve.io`` (custom resources only)."""
        return f"{self.plural}.{self.group}"

    def path(self, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        """REST path of the collection, or of one object (and its subresource)."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
            if subresource:
                base += f"/{subresource}"
        return base

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


KSERVE = "serving.kserve.io"
KNATIVE = "serving.knative.dev"
KNATIVE_AUTOSCALING = "autoscaling.internal.knative.dev"

NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
NODES = Resource("", "v1", "nodes", "Node", namespaced=False)
PODS = Resource("", "v1", "pods", "Pod")
EVENTS = Resource("", "v1", "events", "Event")
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
SECRETS = Resource("", "v1", "secrets", "Secret")
SERVICES = Resource("", "v1", "services", "Service")
SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts", "ServiceAccount")
PVCS = Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim")
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions",
                "CustomResourceDefinition", namespaced=False)
INFERENCE_SERVICES = Resource(KSERVE, "v1beta1", "inferenceservices", "InferenceService")
KSERVICES = Resource(KNATIVE, "v1", "services", "Service")
REVISIONS = Resource(KNATIVE, "v1", "revisions", "Revision")
CONFIGURATIONS = Resource(KNATIVE, "v1", "configurations", "Configuration")
ROUTES = Resource(KNATIVE, "v1", "routes", "Route")
PODAUTOSCALERS = Resource(KNATIVE_AUTOSCALING, "v1alpha1", "podautoscalers", "PodAutoscaler")
SERVING_RUNTIMES = Resource(KSERVE, "v1alpha1", "servingruntimes", "ServingRuntime")
CLUSTER_SERVING_RUNTIMES = Resource(KSERVE, "v1alpha1", "clusterservingruntimes",
                                    "ClusterServingRuntime", namespaced=False)

KNOWN: tuple[Resource, ...] = (
    NAMESPACES, NODES, PODS, EVENTS, CONFIGMAPS, SECRETS, SERVICES, SERVICE_ACCOUNTS, PVCS,
    DEPLOYMENTS, CRDS, INFERENCE_SERVICES, KSERVICES, REVISIONS, CONFIGURATIONS, ROUTES,
    PODAUTOSCALERS, SERVING_RUNTIMES, CLUSTER_SERVING_RUNTIMES,
)

_BY_KIND = {(r.api_version, r.kind): r for r in KNOWN}
_BY_NAME = {r.plural: r for r in reversed(KNOWN)}  # core "services" wins over Knative's
_BY_NAME.update({str(r): r for r in KNOWN})
_BY_NAME.update({"isvc": INFERENCE_SERVICES, "inferenceservices": INFERENCE_SERVICES,
                 "ksvc": KSERVICES, "pa": PODAUTOSCALERS, "kpa": PODAUTOSCALERS})


def known(name: str | Resource) -> Resource:
    """``"pods"``, ``"revisions"``, ``"isvc"``, ``"services.serving.knative.dev"`` -> Resource."""
    if isinstance(name, Resource):
        return name
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown resource {name!r}; known: "
                       f"{', '.join(sorted({r.plural for r in KNOWN}))}") from None


def known_for(api_version: str, kind: str) -> Resource | None:
    return _BY_KIND.get((api_version, kind))


def from_discovery(api_version: str, kind: str, document: dict) -> Resource | None:
    """The resource of ``kind`` in an ``APIResourceList`` document, or None."""
    group, _, version = api_version.rpartition("/")
    for entry in document.get("resources") or []:
        if entry.get("kind") == kind and "/" not in str(entry.get("name", "")):
            return Resource(group, version, str(entry["name"]), kind,
                            namespaced=bool(entry.get("namespaced", True)))
    return None
