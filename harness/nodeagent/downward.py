"""The downward API as kubelet renders it: a pod's fields (``fieldRef``) and a container's
resources (``resourceFieldRef``), for env variables and for downwardAPI volume files.

Whole-map fields (``metadata.labels``, ``metadata.annotations``, files only) are kubelet's
``fieldpath.FormatMap``: ``key="value"`` lines, keys sorted, values quoted as Go's ``%q``.
Resources are kubelet's ``ExtractContainerResourceValue``: the quantity divided by the
divisor (default 1) and rounded up, CPU in millicores first; a limit the container does not
set is the node's allocatable (``MergeContainerResourceLimits``).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from harness.objects import parse_quantity


class FieldError(ValueError):
    """A field path or resource the downward API does not support."""


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote``: double quotes, backslash escapes, printable runes kept."""
    escapes = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r",
               "\t": r"\t", "\v": r"\v", "\\": "\\\\", '"': '\\"'}
    out = []
    for ch in text:
        if ch in escapes:
            out.append(escapes[ch])
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def format_map(values: dict[str, str]) -> str:
    """Kubelet's ``fieldpath.FormatMap``."""
    return "\n".join(f"{k}={go_quote(str(values[k]))}" for k in sorted(values))


def field_value(pod: dict[str, Any], path: str, *, pod_ip: str = "",
                host_ip: str = "") -> str:
    """The value of ``fieldRef.fieldPath`` for ``pod``."""
    meta = pod["metadata"]
    spec = pod.get("spec") or {}
    simple = {"metadata.name": meta.get("name", ""),
              "metadata.namespace": meta.get("namespace", ""),
              "metadata.uid": meta.get("uid", ""),
              "spec.nodeName": spec.get("nodeName", ""),
              "spec.serviceAccountName": spec.get("serviceAccountName", ""),
              "status.podIP": pod_ip, "status.hostIP": host_ip,
              "status.podIPs": pod_ip, "status.hostIPs": host_ip}
    if path in simple:
        return str(simple[path])
    for kind in ("labels", "annotations"):
        if path == f"metadata.{kind}":
            return format_map(meta.get(kind) or {})
        prefix = f"metadata.{kind}['"
        if path.startswith(prefix) and path.endswith("']"):
            return str((meta.get(kind) or {}).get(path[len(prefix):-2], ""))
    raise FieldError(f"unsupported fieldRef {path!r}")


def resource_value(container: dict[str, Any], resource: str, divisor: Any = None,
                   allocatable: dict[str, Any] | None = None) -> str:
    """The value of ``resourceFieldRef`` (``limits.cpu``, ``requests.memory``, ...)."""
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not (
            name in ("cpu", "memory", "ephemeral-storage") or name.startswith("hugepages-")):
        raise FieldError(f"unsupported container resource : {resource}")
    resources = container.get("resources") or {}
    raw = (resources.get(kind) or {}).get(name)
    if raw is None and kind == "requests":
        # an unset request defaults to the limit (the API server's defaulting), else 0
        raw = (resources.get("limits") or {}).get(name)
    if raw is None and kind == "limits":
        raw = (allocatable or {}).get(name)
    value = parse_quantity(raw) if raw is not None else Decimal(0)
    div = parse_quantity(divisor) if divisor not in (None, "", 0, "0") else Decimal(1)
    if div == 0:
        div = Decimal(1)
    if name == "cpu":
        # millicores, each side rounded up to whole millis first (Quantity.MilliValue)
        milli = math.ceil(value * 1000)
        div_milli = math.ceil(div * 1000)
        return str(math.ceil(Decimal(milli) / Decimal(div_milli)))
    return str(math.ceil(Decimal(math.ceil(value)) / Decimal(math.ceil(div))))
