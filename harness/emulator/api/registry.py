"""The resource registry: every kind the emulated API server serves, as data.

A :class:`ResourceType` names group, version, kind, plural, short names, scope and
subresources; :data:`BUILTIN_RESOURCES` is the set served by default (core, apps,
events, coordination, apiextensions, KServe, Knative). :class:`Registry` looks them up
by URL parts (group, version, plural) and by ``apiVersion``/``kind``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from harness.emulator.api import printers
from harness.emulator.api.printers import Column

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

COMMON_FIELDS = ("metadata.name", "metadata.namespace")


@dataclass(frozen=True)
class ScaleSpec:
    """Where a resource keeps the numbers its ``scale`` subresource exposes."""

    spec_replicas: str = "spec.replicas"
    status_replicas: str = "status.replicas"
    selector: str = "spec.selector"


@dataclass(frozen=True)
class ResourceType:
    """One served resource: ``/api/v1/pods`` or ``/apis/{group}/{version}/{plural}``."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status: bool = False
    scale: ScaleSpec | None = None
    builtin: bool = True
    """Built-in types accept strategic merge patch; custom resources answer 415."""
    fields: tuple[str, ...] = ()
    """Field-selector labels beyond ``metadata.name`` and ``metadata.namespace``."""
    logs: bool = False
    """Serves the ``log`` subresource (pods)."""
    columns: tuple[Column, ...] = ()
    """Printer columns of ``kubectl get`` (server-side Table; see :mod:`.printers`). For a
    custom resource these are its CRD's ``additionalPrinterColumns`` (JSONPath columns);
    empty means Name and Age."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def key(self) -> str:
        """Storage key: ``pods``, ``apps/deployments``."""
        return f"{self.group}/{self.plural}" if self.group else self.plural

    @property
    def selectable_fields(self) -> tuple[str, ...]:
        return COMMON_FIELDS + self.fields

    def discovery_entries(self) -> list[dict[str, object]]:
        """The ``APIResource`` entries for an ``APIResourceList`` (resource + subresources)."""
        main: dict[str, object] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(ALL_VERBS),
        }
        if self.short_names:
            main["shortNames"] = list(self.short_names)
        if self.categories:
            main["categories"] = list(self.categories)
        out: list[dict[str, object]] = [main]
        if self.status:
            out.append({"name": f"{self.plural}/status", "singularName": "",
                        "namespaced": self.namespaced, "kind": self.kind,
                        "verbs": ["get", "patch", "update"]})
        if self.logs:
            out.append({"name": f"{self.plural}/log", "singularName": "",
                        "namespaced": self.namespaced, "kind": self.kind, "verbs": ["get"]})
        if self.scale is not None:
            out.append({"name": f"{self.plural}/scale", "singularName": "",
                        "namespaced": self.namespaced, "kind": "Scale", "group": "autoscaling",
                        "version": "v1", "verbs": ["get", "patch", "update"]})
        return out


_POD_FIELDS = (
    "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
    "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs",
    "status.nominatedNodeName",
)
_EVENT_FIELDS = (
    "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
    "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
    "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type",
)

KSERVE = "serving.kserve.io"
KNATIVE = "serving.knative.dev"
KNATIVE_AUTOSCALING = "autoscaling.internal.knative.dev"
KNATIVE_NETWORKING = "networking.internal.knative.dev"

_TRAFFIC = ".status.components.predictor.traffic"
_ISVC_COLUMNS = (
    Column("URL", json_path=".status.url"),
    Column("Ready", json_path=".status.conditions[?(@.type=='Ready')].status"),
    Column("Prev", "integer", json_path=f"{_TRAFFIC}[?(@.tag=='prev')].percent"),
    Column("Latest", "integer", json_path=f"{_TRAFFIC}[?(@.latestRevision==true)].percent"),
    Column("PrevRolledoutRevision", json_path=f"{_TRAFFIC}[?(@.tag=='prev')].revisionName"),
    Column("LatestReadyRevision",
           json_path=f"{_TRAFFIC}[?(@.latestRevision==true)].revisionName"),
    printers.AGE,
)
"""KServe's ``serving.kserve.io_inferenceservices.yaml`` printer columns."""
_RUNTIME_COLUMNS = (
    Column("Disabled", "boolean", json_path=".spec.disabled"),
    Column("ModelType", json_path=".spec.supportedModelFormats[*].name"),
    Column("Containers", json_path=".spec.containers[*].name"),
    printers.AGE,
)
"""KServe's (Cluster)ServingRuntime printer columns."""
_LATEST = (Column("LatestCreated", json_path=".status.latestCreatedRevisionName"),
           Column("LatestReady", json_path=".status.latestReadyRevisionName"))
_KSVC_COLUMNS = printers.ready_columns(Column("URL", json_path=".status.url"), *_LATEST)
_CONFIGURATION_COLUMNS = printers.ready_columns(*_LATEST)
_ROUTE_COLUMNS = printers.ready_columns(Column("URL", json_path=".status.url"))
_REVISION_COLUMNS = (
    Column("Config Name",
           json_path=".metadata.labels['serving\\.knative\\.dev/configuration']"),
    Column("Generation",
           json_path=".metadata.labels['serving\\.knative\\.dev/configurationGeneration']"),
    *printers.ready_columns(),
    Column("Actual Replicas", "integer", json_path=".status.actualReplicas"),
    Column("Desired Replicas", "integer", json_path=".status.desiredReplicas"),
)
_SKS_COLUMNS = printers.ready_columns(
    Column("Mode", json_path=".spec.mode"),
    Column("Activators", "integer", json_path=".spec.numActivators"),
    Column("ServiceName", json_path=".status.serviceName"),
    Column("PrivateServiceName", json_path=".status.privateServiceName"))
_PA_COLUMNS = printers.ready_columns(
    Column("DesiredScale", "integer", json_path=".status.desiredScale"),
    Column("ActualScale", "integer", json_path=".status.actualScale"))
"""Knative Serving's ``config/core/300-resources/*.yaml`` printer columns."""

BUILTIN_RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "Namespace", "namespaces", namespaced=False, short_names=("ns",),
                 status=True, fields=("status.phase",),
                 columns=printers.NAMESPACE_COLUMNS),
    ResourceType("", "v1", "Node", "nodes", namespaced=False, short_names=("no",), status=True,
                 fields=("spec.unschedulable",),
                 columns=printers.NODE_COLUMNS),
    ResourceType("", "v1", "Pod", "pods", short_names=("po",), categories=("all",), status=True,
                 fields=_POD_FIELDS, logs=True,
                 columns=printers.POD_COLUMNS),
    ResourceType("", "v1", "Event", "events", short_names=("ev",), fields=_EVENT_FIELDS,
                 columns=printers.EVENT_COLUMNS),
    ResourceType("", "v1", "ConfigMap", "configmaps", short_names=("cm",),
                 columns=printers.CONFIGMAP_COLUMNS),
    ResourceType("", "v1", "Secret", "secrets", fields=("type",),
                 columns=printers.SECRET_COLUMNS),
    ResourceType("", "v1", "Service", "services", short_names=("svc",), categories=("all",),
                 status=True,
                 columns=printers.SERVICE_COLUMNS),
    ResourceType("", "v1", "Endpoints", "endpoints", short_names=("ep",),
                 columns=printers.ENDPOINTS_COLUMNS),
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", short_names=("sa",),
                 columns=printers.SERVICEACCOUNT_COLUMNS),
    ResourceType("apps", "v1", "Deployment", "deployments", short_names=("deploy",),
                 categories=("all",), status=True, scale=ScaleSpec(),
                 columns=printers.DEPLOYMENT_COLUMNS),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", short_names=("rs",),
                 categories=("all",), status=True, scale=ScaleSpec(),
                 columns=printers.REPLICASET_COLUMNS),
    ResourceType("events.k8s.io", "v1", "Event", "events", short_names=("ev",)),
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases",
                 columns=printers.LEASE_COLUMNS),
    ResourceType("apiextensions.k8s.io", "v1", "CustomResourceDefinition",
                 "customresourcedefinitions", namespaced=False, short_names=("crd", "crds"),
                 status=True,
                 columns=printers.CRD_COLUMNS),
    ResourceType(KSERVE, "v1beta1", "InferenceService", "inferenceservices",
                 short_names=("isvc",), status=True, builtin=False,
                 columns=_ISVC_COLUMNS),
    ResourceType(KSERVE, "v1alpha1", "ServingRuntime", "servingruntimes", builtin=False,
                 columns=_RUNTIME_COLUMNS),
    ResourceType(KSERVE, "v1alpha1", "ClusterServingRuntime", "clusterservingruntimes",
                 namespaced=False, builtin=False, columns=_RUNTIME_COLUMNS),
    ResourceType(KNATIVE, "v1", "Service", "services", short_names=("kservice", "ksvc"),
                 categories=("all", "knative", "serving"), status=True, builtin=False,
                 columns=_KSVC_COLUMNS),
    ResourceType(KNATIVE, "v1", "Configuration", "configurations",
                 short_names=("config", "cfg"), categories=("all", "knative", "serving"),
                 status=True, builtin=False,
                 columns=_CONFIGURATION_COLUMNS),
    ResourceType(KNATIVE, "v1", "Revision", "revisions", short_names=("rev",),
                 categories=("all", "knative", "serving"), status=True, builtin=False,
                 columns=_REVISION_COLUMNS),
    ResourceType(KNATIVE, "v1", "Route", "routes", short_names=("rt",),
                 categories=("all", "knative", "serving"), status=True, builtin=False,
                 columns=_ROUTE_COLUMNS),
    ResourceType(KNATIVE_NETWORKING, "v1alpha1", "ServerlessService", "serverlessservices",
                 short_names=("sks",), categories=("knative-internal", "networking"),
                 status=True, builtin=False, columns=_SKS_COLUMNS),
    ResourceType(KNATIVE_AUTOSCALING, "v1alpha1", "PodAutoscaler", "podautoscalers",
                 short_names=("kpa", "pa"), categories=("all", "knative", "serving",
                                                         "autoscaling"),
                 status=True, builtin=False,
                 columns=_PA_COLUMNS),
)


@dataclass
class Registry:
    """Lookup of served resources by URL and by ``apiVersion``/``kind``."""

    types: list[ResourceType] = field(default_factory=lambda: list(BUILTIN_RESOURCES))

    def __post_init__(self) -> None:
        self._by_url = {(t.group, t.version, t.plural): t for t in self.types}
        self._by_kind = {(t.api_version, t.kind): t for t in self.types}
        self._by_key = {t.key: t for t in self.types}

    def add(self, rtype: ResourceType) -> None:
        self.types.append(rtype)
        self.__post_init__()

    def by_url(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_url.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((api_version, kind))

    def by_key(self, key: str) -> ResourceType | None:
        return self._by_key.get(key)

    def get(self, ref: str | ResourceType) -> ResourceType:
        """Resolve ``"pods"``, ``"apps/deployments"``, ``"serving.kserve.io/inferenceservices"``
        or a ResourceType; raise KeyError naming the unknown resource."""
        if isinstance(ref, ResourceType):
            return ref
        found = self._by_key.get(ref)
        if found is None:
            raise KeyError(f"unknown resource {ref!r}")
        return found

    def groups(self) -> dict[str, list[str]]:
        """Named groups (core excluded) -> their versions, in registration order."""
        out: dict[str, list[str]] = {}
        for t in self.types:
            if t.group and t.version not in out.setdefault(t.group, []):
                out[t.group].append(t.version)
        return out

    def in_group_version(self, group: str, version: str) -> Iterable[ResourceType]:
        return [t for t in self.types if t.group == group and t.version == version]


def crd_object(rtype: ResourceType) -> dict[str, object]:
    """A CustomResourceDefinition object describing a custom (non built-in) resource."""
    names: dict[str, object] = {"plural": rtype.plural, "singular": rtype.singular,
                                "kind": rtype.kind, "listKind": f"{rtype.kind}List"}
    if rtype.short_names:
        names["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        names["categories"] = list(rtype.categories)
    subresources: dict[str, object] = {}
    if rtype.status:
        subresources["status"] = {}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{rtype.plural}.{rtype.group}"},
        "spec": {
            "group": rtype.group,
            "names": names,
            "scope": "Namespaced" if rtype.namespaced else "Cluster",
            "versions": [{
                "name": rtype.version, "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object",
                                               "x-kubernetes-preserve-unknown-fields": True}},
                "subresources": subresources,
                **({"additionalPrinterColumns": [c.printer_column() for c in rtype.columns
                                                 if c.json_path]}
                   if rtype.columns else {}),
            }],
        },
        "status": {"acceptedNames": names, "storedVersions": [rtype.version],
                   "conditions": [{"type": "Established", "status": "True"}]},
    }
