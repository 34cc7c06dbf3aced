"""Server-side printing: the ``meta.k8s.io/v1`` Table a real API server answers when a
client sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` (``kubectl get``).

Columns are data: each :class:`~harness.emulator.api.registry.ResourceType` carries a tuple
of :class:`Column` (name, type, priority and either a CRD-style ``json_path`` or a
``value`` function of the object). Built-in kinds get the cells kube-apiserver's printers
compute (``pkg/printers/internalversion/printers.go``: a pod's READY ``1/1``, STATUS from
its container states, RESTARTS ``2 (5m ago)``); custom resources get their CRD's
``additionalPrinterColumns`` evaluated as apiextensions-apiserver does (first JSONPath
match, ``date`` columns as an age, a missing value as ``None`` which kubectl prints as
``<none>``). A kind without columns gets ``Name`` and ``Age``, as a CRD without printer
columns does. Wide (priority 1) columns are always computed; kubectl hides them unless
``-o wide``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from harness.emulator.api.jsonpath import compile_path, find
from harness.objects import condition_is, get_condition, parse_time

NAME_DOC = ("Name must be unique within a namespace. Is required when creating resources, "
            "although some resources may allow a client to request the generation of an "
            "appropriate name automatically. Name is primarily intended for creation "
            "idempotence and configuration definition. Cannot be updated.")
AGE_DOC = ("CreationTimestamp is a timestamp representing the server time when this object "
           "was created.")

Obj = dict[str, Any]


@dataclass(frozen=True)
class Column:
    """One printer column: a CRD ``additionalPrinterColumns`` entry or a built-in cell."""

    name: str
    type: str = "string"
    json_path: str = ""
    """CRD-style path (``.status.conditions[?(@.type=='Ready')].status``)."""
    value: Callable[[Obj], Any] | None = None
    """For built-in kinds: the cell computed from the object (wins over ``json_path``)."""
    priority: int = 0
    description: str = ""
    format: str = ""

    def __post_init__(self) -> None:
        if self.json_path:
            compile_path(self.json_path)  # fail at registration, not at print time

    def definition(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description, "priority": self.priority}

    def printer_column(self) -> dict[str, Any]:
        """The CRD ``additionalPrinterColumns`` entry (json_path columns only)."""
        out: dict[str, Any] = {"name": self.name, "type": self.type,
                               "jsonPath": self.json_path}
        if self.priority:
            out["priority"] = self.priority
        if self.description:
            out["description"] = self.description
        return out

    def cell(self, obj: Obj) -> Any:
        if self.value is not None:
            return self.value(obj)
        found = find(obj, self.json_path)
        if not found:
            return None
        return _json_cell(self.type, found[0])


NAME = Column("Name", format="name", description=NAME_DOC)
AGE = Column("Age", "date", json_path=".metadata.creationTimestamp", description=AGE_DOC)


def _json_cell(ctype: str, value: Any) -> Any:
    """apiextensions' ``cellForJSONValue`` (string columns print the value as JSONPath does)."""
    if ctype == "date":
        return age(value) if isinstance(value, str) else None
    if ctype == "integer":
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return int(value)
        return None
    if ctype == "number":
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if ctype == "boolean":
        return value if isinstance(value, bool) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        import json
        return json.dumps(value, separators=(",", ":"))
    return str(value)


# ---------------------------------------------------------------------------- time


def human_duration(seconds: float) -> str:
    """``k8s.io/apimachinery/pkg/util/duration.HumanDuration``."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    years = hours // (24 * 365)
    if years < 8:
        days = (hours // 24) % 365
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{years}y"


def age(timestamp: str | None) -> str:
    """``translateTimestampSince``: ``<unknown>`` for no time."""
    t = parse_time(timestamp)
    if t is None:
        return "<unknown>"
    return human_duration(time.time() - t)


# ---------------------------------------------------------------------------- helpers


def _get(obj: Any, *keys: str, default: Any = None) -> Any:
    for k in keys:
        if not isinstance(obj, dict):
            return default
        obj = obj.get(k)
        if obj is None:
            return default
    return obj


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _age_of(obj: Obj) -> str:
    return age(_get(obj, "metadata", "creationTimestamp"))


def _format_labels(labels: dict[str, str] | None) -> str:
    if not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _selector(sel: Obj | None) -> str:
    """``metav1.LabelSelectorAsSelector(...).String()``."""
    if not sel:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for expr in sel.get("matchExpressions") or []:
        op, key, values = expr.get("operator"), expr.get("key"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(sorted(values))})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(sorted(values))})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(sorted(parts)) or "<none>"


def _containers(obj: Obj) -> list[Obj]:
    return _get(obj, "spec", "template", "spec", "containers", default=[]) or []


def _container_names(obj: Obj) -> str:
    return ",".join(str(c.get("name", "")) for c in _containers(obj))


def _container_images(obj: Obj) -> str:
    return ",".join(str(c.get("image", "")) for c in _containers(obj))


# ---------------------------------------------------------------------------- pods


def pod_summary(pod: Obj) -> tuple[str, str, str]:
    """READY, STATUS and RESTARTS as kube-apiserver's ``printPod`` computes them."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    restarts = 0
    last_restart: float | None = None
    ready = 0
    reason = status.get("reason") or status.get("phase") or ""
    if (get_condition(pod, "PodScheduled") or {}).get("reason") == "SchedulingGated":
        reason = "SchedulingGated"

    def note_restart(cs: Obj) -> None:
        nonlocal last_restart
        finished = parse_time(_get(cs, "lastState", "terminated", "finishedAt"))
        if finished is not None and (last_restart is None or finished > last_restart):
            last_restart = finished

    init_specs = spec.get("initContainers") or []
    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        restarts += _int(cs.get("restartCount"))
        note_restart(cs)
        state = cs.get("state") or {}
        term, waiting = state.get("terminated"), state.get("waiting")
        if term is not None and _int(term.get("exitCode")) == 0:
            continue
        if term is not None:
            if not term.get("reason"):
                reason = (f"Init:Signal:{term['signal']}" if term.get("signal")
                          else f"Init:ExitCode:{_int(term.get('exitCode'))}")
            else:
                reason = "Init:" + term["reason"]
        elif waiting is not None and waiting.get("reason") and (
                waiting["reason"] != "PodInitializing"):
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break
    initialized = condition_is(pod, "Initialized")
    if not initializing or initialized:
        restarts = 0
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += _int(cs.get("restartCount"))
            note_restart(cs)
            state = cs.get("state") or {}
            waiting, term = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif term is not None and term.get("reason"):
                reason = term["reason"]
            elif term is not None:
                reason = (f"Signal:{term['signal']}" if term.get("signal")
                          else f"ExitCode:{_int(term.get('exitCode'))}")
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = condition_is(pod, "Ready")
            reason = "Running" if pod_ready else "NotReady"
    if _get(pod, "metadata", "deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif status.get("phase") not in ("Succeeded", "Failed"):
            reason = "Terminating"
    restarts_s = str(restarts)
    if restarts and last_restart is not None:
        restarts_s = f"{restarts} ({human_duration(time.time() - last_restart)} ago)"
    total = len(spec.get("containers") or [])
    return f"{ready}/{total}", reason, restarts_s


def _pod_ip(pod: Obj) -> str:
    ips = _get(pod, "status", "podIPs", default=[]) or []
    ip = ips[0].get("ip") if ips else _get(pod, "status", "podIP")
    return ip or "<none>"


def _readiness_gates(pod: Obj) -> str:
    gates = _get(pod, "spec", "readinessGates", default=[]) or []
    if not gates:
        return "<none>"
    conditions = {c.get("type"): c.get("status")
                  for c in _get(pod, "status", "conditions", default=[]) or []}
    true = sum(1 for g in gates if conditions.get(g.get("conditionType")) == "True")
    return f"{true}/{len(gates)}"


POD_COLUMNS = (
    NAME,
    Column("Ready", value=lambda p: pod_summary(p)[0],
           description="The aggregate readiness state of this pod for accepting traffic."),
    Column("Status", value=lambda p: pod_summary(p)[1],
           description="The aggregate status of the containers in this pod."),
    Column("Restarts", value=lambda p: pod_summary(p)[2],
           description="The number of times the containers in this pod have been restarted "
                       "and when the last container in this pod has restarted."),
    Column("Age", value=_age_of, description=AGE_DOC),
    Column("IP", priority=1, value=_pod_ip,
           description="podIP address allocated to the pod."),
    Column("Node", priority=1, value=lambda p: _get(p, "spec", "nodeName") or "<none>",
           description="NodeName indicates in which node this pod is scheduled."),
    Column("Nominated Node", priority=1,
           value=lambda p: _get(p, "status", "nominatedNodeName") or "<none>",
           description="nominatedNodeName is set only when this pod preempts other pods."),
    Column("Readiness Gates", priority=1, value=_readiness_gates,
           description="If specified, all readiness gates will be evaluated for pod "
                       "readiness."),
)


# ---------------------------------------------------------------------------- nodes


def _node_status(node: Obj) -> str:
    out = []
    for cond in _get(node, "status", "conditions", default=[]) or []:
        if cond.get("type") == "Ready":
            out = ["Ready" if cond.get("status") == "True" else "NotReady"]
    if not out:
        out = ["Unknown"]
    if _get(node, "spec", "unschedulable"):
        out.append("SchedulingDisabled")
    return ",".join(out)


def _node_roles(node: Obj) -> str:
    roles = set()
    for key, value in (_get(node, "metadata", "labels", default={}) or {}).items():
        if key.startswith("node-role.kubernetes.io/"):
            role = key[len("node-role.kubernetes.io/"):]
            if role:
                roles.add(role)
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) or "<none>"


def _node_address(kind: str) -> Callable[[Obj], str]:
    def cell(node: Obj) -> str:
        for addr in _get(node, "status", "addresses", default=[]) or []:
            if addr.get("type") == kind:
                return str(addr.get("address"))
        return "<none>"
    return cell


def _node_info(field: str) -> Callable[[Obj], str]:
    return lambda n: _get(n, "status", "nodeInfo", field) or "<unknown>"


NODE_COLUMNS = (
    NAME,
    Column("Status", value=_node_status, description="The status of the node"),
    Column("Roles", value=_node_roles, description="The roles of the node"),
    Column("Age", value=_age_of, description=AGE_DOC),
    Column("Version", value=lambda n: _get(n, "status", "nodeInfo", "kubeletVersion") or "",
           description="Kubelet Version reported by the node."),
    Column("Internal-IP", priority=1, value=_node_address("InternalIP"),
           description="List of addresses reachable to the node."),
    Column("External-IP", priority=1, value=_node_address("ExternalIP"),
           description="List of addresses reachable to the node."),
    Column("OS-Image", priority=1, value=_node_info("osImage"),
           description="OS Image reported by the node from /etc/os-release."),
    Column("Kernel-Version", priority=1, value=_node_info("kernelVersion"),
           description="Kernel Version reported by the node."),
    Column("Container-Runtime", priority=1, value=_node_info("containerRuntimeVersion"),
           description="ContainerRuntime Version reported by the node."),
)


# ---------------------------------------------------------------------------- workloads


def _replicas(*keys: str) -> Callable[[Obj], int]:
    return lambda o: _int(_get(o, *keys))


_WORKLOAD_WIDE = (
    Column("Containers", priority=1, value=_container_names,
           description="Names of each container in the template."),
    Column("Images", priority=1, value=_container_images,
           description="Images referenced by each container in the template."),
    Column("Selector", priority=1, value=lambda o: _selector(_get(o, "spec", "selector")),
           description="Label selector for pods."),
)

DEPLOYMENT_COLUMNS = (
    NAME,
    Column("Ready", value=lambda d: f"{_int(_get(d, 'status', 'readyReplicas'))}/"
                                    f"{_int(_get(d, 'spec', 'replicas'))}",
           description="Number of the pod with ready state"),
    Column("Up-to-date", "integer", value=_replicas("status", "updatedReplicas"),
           description="Total number of non-terminated pods targeted by this deployment "
                       "that have the desired template spec."),
    Column("Available", "integer", value=_replicas("status", "availableReplicas"),
           description="Total number of available pods (ready for at least minReadySeconds) "
                       "targeted by this deployment."),
    Column("Age", value=_age_of, description=AGE_DOC),
    *_WORKLOAD_WIDE,
)

REPLICASET_COLUMNS = (
    NAME,
    Column("Desired", "integer", value=_replicas("spec", "replicas"),
           description="Replicas is the number of desired replicas."),
    Column("Current", "integer", value=_replicas("status", "replicas"),
           description="Replicas is the most recently observed number of replicas."),
    Column("Ready", "integer", value=_replicas("status", "readyReplicas"),
           description="The number of ready replicas for this replica set."),
    Column("Age", value=_age_of, description=AGE_DOC),
    *_WORKLOAD_WIDE,
)


# ---------------------------------------------------------------------------- services


def _service_cluster_ip(svc: Obj) -> str:
    ips = _get(svc, "spec", "clusterIPs", default=[]) or []
    return ips[0] if ips else (_get(svc, "spec", "clusterIP") or "<none>")


def _service_external_ip(svc: Obj) -> str:
    spec = svc.get("spec") or {}
    stype = spec.get("type") or "ClusterIP"
    external = spec.get("externalIPs") or []
    if stype in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if stype == "LoadBalancer":
        ingress = _get(svc, "status", "loadBalancer", "ingress", default=[]) or []
        ips = [i.get("ip") or i.get("hostname") for i in ingress
               if i.get("ip") or i.get("hostname")]
        ips += external
        return ",".join(ips) if ips else "<pending>"
    if stype == "ExternalName":
        return str(spec.get("externalName") or "")
    return "<unknown>"


def _service_ports(svc: Obj) -> str:
    out = []
    for p in _get(svc, "spec", "ports", default=[]) or []:
        proto = p.get("protocol") or "TCP"
        if p.get("nodePort"):
            out.append(f"{p.get('port')}:{p['nodePort']}/{proto}")
        else:
            out.append(f"{p.get('port')}/{proto}")
    return ",".join(out) or "<none>"


SERVICE_COLUMNS = (
    NAME,
    Column("Type", value=lambda s: _get(s, "spec", "type") or "ClusterIP",
           description="type determines how the Service is exposed."),
    Column("Cluster-IP", value=_service_cluster_ip,
           description="clusterIP is the IP address of the service."),
    Column("External-IP", value=_service_external_ip,
           description="externalIPs is a list of IP addresses for which nodes in the "
                       "cluster will also accept traffic for this service."),
    Column("Port(s)", value=_service_ports,
           description="The list of ports that are exposed by this service."),
    Column("Age", value=_age_of, description=AGE_DOC),
    Column("Selector", priority=1,
           value=lambda s: _format_labels(_get(s, "spec", "selector")),
           description="Route service traffic to pods with label keys and values matching "
                       "this selector."),
)


def _endpoints(ep: Obj) -> str:
    addrs = []
    for subset in ep.get("subsets") or []:
        ports = subset.get("ports") or []
        for addr in subset.get("addresses") or []:
            if ports:
                addrs.extend(f"{addr.get('ip')}:{p.get('port')}" for p in ports)
            else:
                addrs.append(str(addr.get("ip")))
    if not addrs:
        return "<none>"
    if len(addrs) > 3:
        return ",".join(addrs[:3]) + f" + {len(addrs) - 3} more..."
    return ",".join(addrs)


ENDPOINTS_COLUMNS = (
    NAME,
    Column("Endpoints", value=_endpoints, description="The set of all endpoints is the "
                                                      "union of all subsets."),
    Column("Age", value=_age_of, description=AGE_DOC),
)


# ---------------------------------------------------------------------------- events


def _event_source(ev: Obj) -> str:
    src = ev.get("source") or {}
    component = src.get("component") or ev.get("reportingComponent") or ""
    host = src.get("host") or ev.get("reportingInstance") or ""
    return f"{component}, {host}" if host else component


def _event_times(ev: Obj) -> tuple[str, str, int]:
    first = age(ev.get("firstTimestamp")) if ev.get("firstTimestamp") else age(
        ev.get("eventTime"))
    last = age(ev.get("lastTimestamp")) if ev.get("lastTimestamp") else first
    count = _int(ev.get("count"))
    series = ev.get("series")
    if series:
        last = age(series.get("lastObservedTime"))
        count = _int(series.get("count"))
    elif count == 0:
        count = 1
    return last, first, count


def _event_object(ev: Obj) -> str:
    inv = ev.get("involvedObject") or {}
    kind = str(inv.get("kind") or "").lower()
    return f"{kind}/{inv['name']}" if inv.get("name") else kind


EVENT_COLUMNS = (
    Column("Last Seen", value=lambda e: _event_times(e)[0],
           description="The time at which the most recent occurrence of this event was "
                       "recorded."),
    Column("Type", value=lambda e: e.get("type") or "",
           description="Type of this event (Normal, Warning), new types could be added in "
                       "the future"),
    Column("Reason", value=lambda e: e.get("reason") or "",
           description="This should be a short, machine understandable string that gives "
                       "the reason for the transition into the object's current status."),
    Column("Object", value=_event_object, description="The object that this event is about."),
    Column("Subobject", priority=1,
           value=lambda e: _get(e, "involvedObject", "fieldPath") or "",
           description="If referring to a piece of an object instead of an entire object, "
                       "this string should contain a valid JSON/Go field access statement."),
    Column("Source", priority=1, value=_event_source,
           description="The component reporting this event."),
    Column("Message", value=lambda e: str(e.get("message") or "").strip(),
           description="A human-readable description of the status of this operation."),
    Column("First Seen", priority=1, value=lambda e: _event_times(e)[1],
           description="The time at which the event was first recorded."),
    Column("Count", priority=1, value=lambda e: _event_times(e)[2],
           description="The number of times this event has occurred."),
    Column("Name", priority=1, format="name", value=lambda e: e["metadata"]["name"],
           description=NAME_DOC),
)


# ---------------------------------------------------------------------------- small kinds

NAMESPACE_COLUMNS = (
    NAME,
    Column("Status", value=lambda n: _get(n, "status", "phase") or "",
           description="The status of the namespace"),
    Column("Age", value=_age_of, description=AGE_DOC),
)

CONFIGMAP_COLUMNS = (
    NAME,
    Column("Data", "integer",
           value=lambda c: len(c.get("data") or {}) + len(c.get("binaryData") or {}),
           description="Data contains the configuration data."),
    Column("Age", value=_age_of, description=AGE_DOC),
)

SECRET_COLUMNS = (
    NAME,
    Column("Type", value=lambda s: s.get("type") or "Opaque",
           description="Used to facilitate programmatic handling of secret data."),
    Column("Data", "integer", value=lambda s: len(s.get("data") or {}),
           description="Data contains the secret data."),
    Column("Age", value=_age_of, description=AGE_DOC),
)

SERVICEACCOUNT_COLUMNS = (
    NAME,
    Column("Secrets", "integer", value=lambda s: len(s.get("secrets") or []),
           description="Secrets is a list of the secrets in the same namespace that pods "
                       "running using this ServiceAccount are allowed to use."),
    Column("Age", value=_age_of, description=AGE_DOC),
)

LEASE_COLUMNS = (
    NAME,
    Column("Holder", value=lambda lease: _get(lease, "spec", "holderIdentity") or "<unset>",
           description="holderIdentity contains the identity of the holder of a current "
                       "lease."),
    Column("Age", value=_age_of, description=AGE_DOC),
)

CRD_COLUMNS = (
    NAME,
    Column("Created At", "date", value=lambda o: _get(o, "metadata", "creationTimestamp"),
           description=AGE_DOC),
)


def ready_columns(*extra: Column, age_column: bool = False) -> tuple[Column, ...]:
    """CRD printer columns ending in Ready/Reason from the ``Ready`` condition (Knative)."""
    cols = (*extra,
            Column("Ready", json_path=".status.conditions[?(@.type=='Ready')].status"),
            Column("Reason", json_path=".status.conditions[?(@.type=='Ready')].reason"))
    return (*cols, AGE) if age_column else cols


# ---------------------------------------------------------------------------- the table


def columns_of(columns: tuple[Column, ...]) -> tuple[Column, ...]:
    """The full column list: custom-resource columns get ``Name`` first; none -> Name, Age."""
    if not columns:
        return (NAME, AGE)
    if any(c.format == "name" for c in columns):
        return columns
    return (NAME, *columns)


def partial_metadata(obj: Obj) -> Obj:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata") or {}}


def _row(cols: tuple[Column, ...], obj: Obj, include: str) -> Obj:
    cells = []
    for col in cols:
        if col.format == "name" and col.value is None and not col.json_path:
            cells.append(obj["metadata"].get("name", ""))
        else:
            try:
                cells.append(col.cell(obj))
            except (KeyError, TypeError, ValueError, IndexError, AttributeError):
                cells.append(None)
    row: Obj = {"cells": cells}
    if include == "Object":
        row["object"] = obj
    elif include != "None":
        row["object"] = partial_metadata(obj)
    return row


def table(columns: tuple[Column, ...], objects: Iterable[Obj], *,
          resource_version: str | None = None, continue_token: str | None = None,
          include_object: str = "Metadata", no_headers: bool = False,
          api_version: str = "meta.k8s.io/v1") -> Obj:
    """The ``Table`` of ``objects`` (one row each)."""
    cols = columns_of(columns)
    meta: Obj = {}
    if resource_version:
        meta["resourceVersion"] = resource_version
    if continue_token:
        meta["continue"] = continue_token
    out: Obj = {"kind": "Table", "apiVersion": api_version, "metadata": meta}
    if not no_headers:
        out["columnDefinitions"] = [c.definition() for c in cols]
    out["rows"] = [_row(cols, o, include_object) for o in objects]
    return out
