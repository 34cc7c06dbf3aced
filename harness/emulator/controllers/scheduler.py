"""The scheduler: binds Pending pods to nodes (``kubernetes-api.md`` §4.3).

Filters, in the order kube-scheduler reports them: node Ready and schedulable,
``nodeSelector``, required node affinity (``In``, ``NotIn``, ``Exists``, ``DoesNotExist``,
``Gt``, ``Lt``; terms ORed, expressions ANDed; ``matchFields`` on ``metadata.name``),
taints and tolerations (NoSchedule / NoExecute), and resource fit of the summed requests of
non-terminated pods, ``nvidia.com/gpu`` included. A pod that fits nowhere keeps
``PodScheduled=False`` (reason ``Unschedulable``) and gets a Warning ``FailedScheduling``
event whose message says why, e.g. ``0/4 nodes are available: 2 node(s) didn't match Pod's
node affinity/selector, 2 Insufficient nvidia.com/gpu.``. Among fitting nodes the least
requested one wins (ties by name). ``ignore_affinity`` is a fault switch.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Hashable, Iterable
from decimal import Decimal
from typing import Any

from harness.emulator.api.selectors import node_requirement
from harness.emulator.api.store import Store
from harness.emulator.api.subscriptions import WatchEvent
from harness.emulator.controllers.base import Controller, condition
from harness.objects import format_time, get_condition, parse_quantity

log = logging.getLogger(__name__)

SCHEDULER_NAME = "default-scheduler"
_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
_TAINT = "node(s) had untolerated taint {%s}"
_NOT_READY = "node(s) were unschedulable"


def pod_requests(pod: dict[str, Any]) -> dict[str, Decimal]:
    """Summed container requests (limits stand in for missing requests), plus one pod."""
    total: dict[str, Decimal] = {"pods": Decimal(1)}
    spec = pod.get("spec") or {}
    for c in spec.get("containers") or []:
        res = c.get("resources") or {}
        merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        for name, value in merged.items():
            total[name] = total.get(name, Decimal(0)) + parse_quantity(value)
    for c in spec.get("initContainers") or []:  # init containers run one at a time
        res = c.get("resources") or {}
        merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        for name, value in merged.items():
            v = parse_quantity(value)
            if v > total.get(name, Decimal(0)):
                total[name] = v
    return total


def _expression_matches(expr: dict[str, Any], labels: dict[str, str]) -> bool:
    req = node_requirement(expr)
    return req is not None and req.matches(labels)


def _field_matches(expr: dict[str, Any], node: dict[str, Any]) -> bool:
    if expr.get("key") != "metadata.name":
        return False
    name = node["metadata"]["name"]
    values = expr.get("values") or []
    if expr.get("operator") == "In":
        return name in values
    if expr.get("operator") == "NotIn":
        return name not in values
    return False


def term_matches(term: dict[str, Any], node: dict[str, Any]) -> bool:
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False
    labels = node["metadata"].get("labels") or {}
    return (all(_expression_matches(e, labels) for e in exprs)
            and all(_field_matches(f, node) for f in fields))


def affinity_matches(pod: dict[str, Any], node: dict[str, Any]) -> bool:
    """``nodeSelector`` and required node affinity both pass."""
    spec = pod.get("spec") or {}
    labels = node["metadata"].get("labels") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required is None:
        return True
    return any(term_matches(t, node) for t in required.get("nodeSelectorTerms") or [])


def tolerates(toleration: dict[str, Any], taint: dict[str, Any]) -> bool:
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    op = toleration.get("operator") or "Equal"
    if not key:
        return op == "Exists"
    if key != taint.get("key"):
        return False
    if op == "Exists":
        return True
    return (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated_taint(pod: dict[str, Any], node: dict[str, Any]) -> dict[str, Any] | None:
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def _node_ready(node: dict[str, Any]) -> bool:
    if (node.get("spec") or {}).get("unschedulable"):
        return False
    ready = get_condition(node, "Ready")
    return ready is None or ready.get("status") == "True"


def filter_node(pod: dict[str, Any], node: dict[str, Any], used: dict[str, Decimal],
                *, ignore_affinity: bool = False) -> str | None:
    """None when ``pod`` fits ``node`` (with ``used`` already requested there), else the
    reason in kube-scheduler's words."""
    if not _node_ready(node):
        return _NOT_READY
    if not ignore_affinity and not affinity_matches(pod, node):
        return _AFFINITY
    taint = untolerated_taint(pod, node)
    if taint is not None:
        text = f"{taint.get('key')}: {taint.get('value')}" if taint.get("value") else str(
            taint.get("key"))
        return _TAINT % text
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    for name, want in sorted(pod_requests(pod).items()):
        if want <= 0:
            continue
        have = parse_quantity(allocatable[name]) if name in allocatable else Decimal(0)
        if used.get(name, Decimal(0)) + want > have:
            return "Too many pods" if name == "pods" else f"Insufficient {name}"
    return None


def unschedulable_message(n_nodes: int, reasons: Iterable[str]) -> str:
    counts = Counter(reasons)
    parts = ", ".join(f"{n} {r}" for r, n in sorted(counts.items()))
    return (f"0/{n_nodes} nodes are available: {parts}. preemption: 0/{n_nodes} nodes are "
            "available: no preemption victims found for incoming pod.")


def choose_node(pod: dict[str, Any], nodes: list[dict[str, Any]],
                used: dict[str, dict[str, Decimal]], *, ignore_affinity: bool = False,
                ) -> tuple[str | None, str]:
    """(node name, "") or (None, the FailedScheduling message)."""
    fits: list[tuple[Decimal, str]] = []
    reasons: list[str] = []
    for node in nodes:
        name = node["metadata"]["name"]
        reason = filter_node(pod, node, used.get(name, {}), ignore_affinity=ignore_affinity)
        if reason is None:
            alloc = (node.get("status") or {}).get("allocatable") or {}
            cpu = parse_quantity(alloc.get("cpu", "0")) or Decimal(1)
            load = used.get(name, {}).get("cpu", Decimal(0)) / cpu
            fits.append((load, name))
        else:
            reasons.append(reason)
    if fits:
        return min(fits)[1], ""
    return None, unschedulable_message(len(nodes), reasons)


def usage_by_node(pods: Iterable[dict[str, Any]]) -> dict[str, dict[str, Decimal]]:
    used: dict[str, dict[str, Decimal]] = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        slot = used.setdefault(node, {})
        for name, value in pod_requests(pod).items():
            slot[name] = slot.get(name, Decimal(0)) + value
    return used


class Scheduler(Controller):
    """Binds unscheduled pods; retries the Pending ones when pods go or nodes change."""

    name = "scheduler"
    resources = ("pods", "nodes")

    def __init__(self, store: Store, *, ignore_affinity: bool = False) -> None:
        super().__init__(store)
        self.ignore_affinity = ignore_affinity
        self._reported: dict[tuple[str, str], str] = {}

    def keys_for(self, resource: str, event: WatchEvent) -> Iterable[Hashable]:
        if resource == "nodes":
            return ["*"]
        meta = event.object["metadata"]
        if event.type == "DELETED":
            self._reported.pop((meta.get("namespace", ""), meta["name"]), None)
            return ["*"]  # capacity freed
        if (event.object.get("spec") or {}).get("nodeName"):
            return ["*"] if meta.get("deletionTimestamp") else []
        return [(meta["namespace"], meta["name"])]

    async def reconcile(self, key: Hashable) -> None:
        pods = self.store.list("pods")["items"]
        pending = [p for p in pods if not (p.get("spec") or {}).get("nodeName")
                   and not p["metadata"].get("deletionTimestamp")
                   and (p.get("spec") or {}).get("schedulerName",
                                                 SCHEDULER_NAME) == SCHEDULER_NAME]
        if key != "*":
            pending = [p for p in pending
                       if (p["metadata"]["namespace"], p["metadata"]["name"]) == key]
        if not pending:
            return
        nodes = self.store.list("nodes")["items"]
        used = usage_by_node(pods)
        pending.sort(key=lambda p: (p["metadata"].get("creationTimestamp", ""),
                                    p["metadata"]["name"]))
        for pod in pending:
            node, message = choose_node(pod, nodes, used, ignore_affinity=self.ignore_affinity)
            if node is not None:
                self._bind(pod, node)
                slot = used.setdefault(node, {})
                for name, value in pod_requests(pod).items():
                    slot[name] = slot.get(name, Decimal(0)) + value
            else:
                self._unschedulable(pod, message)

    def _bind(self, pod: dict[str, Any], node: str) -> None:
        meta = pod["metadata"]
        ns, name = meta["namespace"], meta["name"]
        self.store.patch("pods", name, {"spec": {"nodeName": node}}, namespace=ns)
        conds = [c for c in (pod.get("status") or {}).get("conditions") or []
                 if c.get("type") != "PodScheduled"]
        conds.insert(0, condition("PodScheduled", "True"))
        self.store.patch("pods", name, {"status": {"conditions": conds}}, namespace=ns,
                         subresource="status")
        self._event(pod, "Normal", "Scheduled",
                    f"Successfully assigned {ns}/{name} to {node}")
        self._reported.pop((ns, name), None)

    def _unschedulable(self, pod: dict[str, Any], message: str) -> None:
        meta = pod["metadata"]
        ns, name = meta["namespace"], meta["name"]
        if self._reported.get((ns, name)) == message:
            return
        self._reported[(ns, name)] = message
        conds = [c for c in (pod.get("status") or {}).get("conditions") or []
                 if c.get("type") != "PodScheduled"]
        conds.insert(0, condition("PodScheduled", "False", "Unschedulable", message))
        self.store.patch("pods", name, {"status": {"conditions": conds, "phase": "Pending"}},
                         namespace=ns, subresource="status")
        self._event(pod, "Warning", "FailedScheduling", message)

    def _event(self, pod: dict[str, Any], type_: str, reason: str, message: str) -> None:
        record_event(self.store, pod, type_, reason, message, SCHEDULER_NAME)


def record_event(store: Store, obj: dict[str, Any], type_: str, reason: str, message: str,
                 component: str) -> None:
    """A core/v1 Event about ``obj`` (best effort: a closing namespace refuses it)."""
    meta = obj["metadata"]
    now = format_time()
    body = {
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {"kind": obj.get("kind", "Pod"), "apiVersion": obj.get("apiVersion",
                                                                                  "v1"),
                           "namespace": meta["namespace"], "name": meta["name"],
                           "uid": meta.get("uid", "")},
        "reason": reason, "message": message, "type": type_,
        "source": {"component": component}, "reportingComponent": component,
        "reportingInstance": component, "firstTimestamp": now, "lastTimestamp": now,
        "eventTime": None, "count": 1, "action": "Scheduling" if component == SCHEDULER_NAME
        else reason,
    }
    try:
        store.create("events", body, namespace=meta["namespace"])
    except Exception as exc:  # noqa: BLE001 - events are best effort
        log.debug("event %s for %s not recorded: %s", reason, meta["name"], exc)
