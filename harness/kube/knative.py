"""Reading Knative's side of a cluster: ``config-autoscaler``, PodAutoscalers, Revisions,
events, the ingress gateway's address and the autoscaler's metrics endpoint.

The ingress address comes, in order, from an explicit ``--ingress-url``, the Kourier
Service ``kourier-system/kourier``, or Istio's ``istio-system/istio-ingressgateway``: its
LoadBalancer ingress IP or hostname and the HTTP port, else a node address and the
port's nodePort. Writing ``config-autoscaler`` is guarded (needs the explicit flag, see
:mod:`harness.kube.safety`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.errors import UserError
from harness.kube.apply import get, list_objects
from harness.kube.client import Kube
from harness.kube.resources import (
    CONFIGMAPS,
    EVENTS,
    NODES,
    PODAUTOSCALERS,
    REVISIONS,
    SERVICES,
)
from harness.kube.safety import CONFIG_NAME, CONFIG_NAMESPACE
from harness.objects import SERVICE_LABEL

INGRESS_SERVICES: tuple[tuple[str, str, str], ...] = (
    ("kourier", "kourier-system", "kourier"),
    ("istio", "istio-system", "istio-ingressgateway"),
)
"""(gateway, namespace, Service name) in the order they are looked for."""
HTTP_PORT_NAMES = ("http2", "http", "http80")


def read_config_autoscaler(kube: Kube) -> dict[str, str] | None:
    """``config-autoscaler``'s data (``_example`` left out), or None if the ConfigMap is
    missing (Knative not installed, or not readable)."""
    cm = get(kube, CONFIGMAPS, CONFIG_NAME, CONFIG_NAMESPACE)
    if cm is None:
        return None
    return {str(k): str(v) for k, v in (cm.get("data") or {}).items() if k != "_example"}


def read_knative_config(kube: Kube, name: str) -> dict[str, str] | None:
    """A ``knative-serving`` ConfigMap's data (``_example`` left out), None if missing."""
    cm = get(kube, CONFIGMAPS, name, CONFIG_NAMESPACE)
    if cm is None:
        return None
    return {str(k): str(v) for k, v in (cm.get("data") or {}).items() if k != "_example"}


def metrics_protocol(kube: Kube) -> str:
    """``config-observability``'s ``metrics-protocol`` (Knative 1.19+ default: ``none``)."""
    data = read_knative_config(kube, "config-observability") or {}
    return data.get("metrics-protocol", "none") or "none"


def write_config_autoscaler(kube: Kube, data: dict[str, str]) -> dict[str, Any]:
    """Merge ``data`` into ``config-autoscaler`` (only with the guard's explicit flag)."""
    kube.guard.check_write("patch", "configmaps", CONFIG_NAMESPACE, CONFIG_NAME)
    return kube.request(  # type: ignore[no-any-return]
        "PATCH", CONFIGMAPS.path(CONFIG_NAMESPACE, CONFIG_NAME),
        body={"data": {str(k): str(v) for k, v in data.items()}},
        content_type="application/merge-patch+json")


def podautoscalers(kube: Kube, namespace: str) -> list[dict[str, Any]]:
    return list_objects(kube, PODAUTOSCALERS, namespace)


def revisions(kube: Kube, namespace: str, *, service: str | None = None
              ) -> list[dict[str, Any]]:
    """Revisions in a namespace (of one Knative Service when ``service`` is given)."""
    selector = f"{SERVICE_LABEL}={service}" if service else None
    return list_objects(kube, REVISIONS, namespace, label_selector=selector)


def events(kube: Kube, namespace: str, *, involved: str | None = None
           ) -> list[dict[str, Any]]:
    """Core events in a namespace (about one object when ``involved`` is its name)."""
    selector = f"involvedObject.name={involved}" if involved else None
    return list_objects(kube, EVENTS, namespace, field_selector=selector)


@dataclass(frozen=True)
class IngressAddress:
    """Where to send requests: ``url`` (``http://host:port``) and how it was found."""

    url: str
    gateway: str
    source: str


def _node_address(kube: Kube) -> str | None:
    for node in list_objects(kube, NODES):
        addrs = {a.get("type"): a.get("address")
                 for a in (node.get("status") or {}).get("addresses") or []}
        for kind in ("ExternalIP", "InternalIP", "Hostname"):
            if addrs.get(kind):
                return str(addrs[kind])
    return None


def _http_port(svc: dict[str, Any]) -> dict[str, Any] | None:
    ports = (svc.get("spec") or {}).get("ports") or []
    for want in HTTP_PORT_NAMES:
        for p in ports:
            if p.get("name") == want:
                return p  # type: ignore[no-any-return]
    for p in ports:
        if p.get("port") == 80:
            return p  # type: ignore[no-any-return]
    return ports[0] if ports else None


def _host(addr: str) -> str:
    return f"[{addr}]" if ":" in addr else addr


def ingress_address(kube: Kube, ingress_url: str | None = None) -> IngressAddress:
    """The ingress gateway's URL; UserError naming what was tried if none is found."""
    if ingress_url:
        return IngressAddress(ingress_url.rstrip("/"), "explicit", "--ingress-url")
    tried = []
    for gateway, ns, name in INGRESS_SERVICES:
        svc = get(kube, SERVICES, name, ns)
        tried.append(f"{ns}/{name}")
        if svc is None:
            continue
        port = _http_port(svc)
        if port is None:
            continue
        for ing in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            addr = ing.get("ip") or ing.get("hostname")
            if addr:
                return IngressAddress(f"http://{_host(str(addr))}:{port['port']}", gateway,
                                      f"{ns}/{name} LoadBalancer")
        if port.get("nodePort"):
            node = _node_address(kube)
            if node:
                return IngressAddress(f"http://{_host(node)}:{port['nodePort']}", gateway,
                                      f"{ns}/{name} nodePort")
    raise UserError(f"no ingress gateway address found (tried {', '.join(tried)}: no "
                    "LoadBalancer ingress or nodePort); pass --ingress-url")


def autoscaler_metrics_urls(kube: Kube) -> list[str]:
    """Candidate URLs of the autoscaler's Prometheus endpoint (``knative-serving/
    autoscaler``'s metrics port): its cluster IP (reachable from inside the cluster) and
    127.0.0.1 (a port-forward, or the emulator). Scrape only when one answers."""
    svc = get(kube, SERVICES, "autoscaler", CONFIG_NAMESPACE)
    if svc is None:
        return []
    spec = svc.get("spec") or {}
    port = next((p for p in spec.get("ports") or [] if "metric" in str(p.get("name", ""))),
                None)
    if port is None:
        return []
    urls = []
    ip = spec.get("clusterIP")
    if ip and ip != "None":
        urls.append(f"http://{_host(str(ip))}:{port['port']}/metrics")
    urls.append(f"http://127.0.0.1:{port['port']}/metrics")
    return urls
