"""Defaulting, normalising and validating of objects on write, as the real API server does.

- :func:`apply_defaults` fills what kube-apiserver fills on create (namespace phase and
  finalizer, pod phase and restart policy, service cluster IP, deployment replicas).
- :func:`normalize` turns numeric quantities into strings (``cpu: 4`` -> ``"4"``), because
  client v37 rejects numbers where a quantity string is expected.
- :func:`validate_metadata` checks names and labels and raises 400/422 :class:`ApiError`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

from harness.emulator.api.registry import ResourceType
from harness.emulator.api.selectors import valid_label_key, valid_label_value
from harness.emulator.api.status import ApiError, bad_request, invalid

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

_cluster_ips: Iterator[int] = itertools.count(10)


def validate_metadata(rtype: ResourceType, obj: dict[str, Any]) -> None:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise bad_request("Object 'metadata' is missing or not an object")
    name = meta.get("name", "")
    if not isinstance(name, str):
        raise bad_request("metadata.name must be a string")
    if rtype.plural == "namespaces" and not rtype.group:
        ok = bool(_DNS_LABEL.match(name)) and len(name) <= 63
        rule = "a lowercase RFC 1123 label"
    else:
        ok = bool(_DNS_SUBDOMAIN.match(name)) and len(name) <= 253
        rule = "a lowercase RFC 1123 subdomain"
    if not ok:
        raise invalid(rtype.kind, name, f'metadata.name: Invalid value: "{name}": must be {rule} '
                      "(lowercase alphanumerics, '-' or '.', starting and ending alphanumeric)",
                      rtype.group)
    for field in ("labels", "annotations"):
        values = meta.get(field)
        if values is None:
            continue
        if not isinstance(values, dict):
            raise bad_request(f"metadata.{field} must be an object")
        for key, value in values.items():
            if not isinstance(value, str):
                raise bad_request(
                    f"json: cannot unmarshal {type(value).__name__} into Go struct field "
                    f"ObjectMeta.metadata.{field} of type string")
            if field == "labels" and not (valid_label_key(key) and valid_label_value(value)):
                raise invalid(rtype.kind, name,
                              f'metadata.labels: Invalid value: "{key}={value}"', rtype.group)


def _quantities(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every dict whose values are quantities, for the kinds we serve."""
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    pod_spec = spec if obj.get("kind") == "Pod" else ((spec.get("template") or {}).get("spec")
                                                      or {})
    for group in ("containers", "initContainers"):
        for c in pod_spec.get(group) or []:
            res = c.get("resources") or {}
            for part in ("requests", "limits"):
                if isinstance(res.get(part), dict):
                    yield res[part]
    if isinstance(pod_spec.get("overhead"), dict):
        yield pod_spec["overhead"]
    for part in ("capacity", "allocatable"):
        if isinstance(status.get(part), dict):
            yield status[part]


def normalize(obj: dict[str, Any]) -> None:
    """Numbers in quantity maps become strings (in place)."""
    for quantities in _quantities(obj):
        for key, value in list(quantities.items()):
            if isinstance(value, bool):
                raise bad_request(f"quantities must match the regular expression: {key}={value}")
            if isinstance(value, (int, float)):
                quantities[key] = str(int(value)) if float(value).is_integer() else str(value)


def apply_defaults(rtype: ResourceType, obj: dict[str, Any]) -> None:
    """Fill server-side defaults of a new object (in place)."""
    if rtype.group == "" and rtype.plural == "namespaces":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {})["phase"] = "Active"
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = (
            obj["metadata"]["name"])
    elif rtype.group == "" and rtype.plural == "pods":
        spec = obj.setdefault("spec", {})
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("serviceAccountName", "default")
        status = obj.setdefault("status", {})
        status.setdefault("phase", "Pending")
        status.setdefault("qosClass", "BestEffort")
    elif rtype.group == "" and rtype.plural == "services":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        if spec.get("clusterIP") in (None, ""):
            n = next(_cluster_ips)
            spec["clusterIP"] = f"10.96.{(n // 250) % 250}.{n % 250 + 1}"
            spec["clusterIPs"] = [spec["clusterIP"]]
        spec.setdefault("sessionAffinity", "None")
    elif rtype.group == "" and rtype.plural == "nodes":
        obj.setdefault("spec", {})
    elif rtype.group == "apps" and rtype.plural in ("deployments", "replicasets"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        if rtype.plural == "deployments":
            spec.setdefault("strategy", {"type": "RollingUpdate", "rollingUpdate": {
                "maxSurge": "25%", "maxUnavailable": "25%"}})
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)


def check_body(obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ApiError(400, "BadRequest", "the body of the request must be a JSON object")
    return obj
