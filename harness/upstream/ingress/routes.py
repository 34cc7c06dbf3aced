"""Knative ``Ingress`` objects (networking.internal.knative.dev/v1alpha1) as a route table,
and the status Knative waits for. Pure functions on dicts; no I/O.

What a table holds, per listener (``public``: ExternalIP rules only; ``private``: every
rule, as Kourier's external and internal gateways):

* hosts: each rule's ``hosts``, with the cluster-local short forms Knative's
  ``ingress.ExpandedHosts`` adds (``name.ns``, ``name.ns.svc`` for
  ``name.ns.svc.cluster.local``); case-insensitive, the port ignored.
* per host, the paths in order (first match wins): ``path`` a literal prefix (empty =
  ``/``), ``headers`` exact matches, ``appendHeaders`` (set on the request), ``rewriteHost``
  (the ``Host`` sent on), and ``splits`` (``percent``, default 100 when there is one;
  ``serviceName``/``serviceNamespace``/``servicePort``; per-split ``appendHeaders``).
* before each rule's paths, the probe paths of Knative's ``ingress.InsertProbe``: the same
  path with ``K-Network-Hash: override`` required and ``K-Network-Hash: <hash>`` appended,
  where ``<hash>`` is :func:`compute_hash` (sha256 of the spec's JSON, namespace and name).
  The backend (activator, or any handler wrapped in networking's ``probe.NewHandler``)
  echoes the hash on a ``K-Network-Probe: probe`` request.

Backends are the Services Knative names: a split resolves to ``(ClusterIP, port)`` of the
Service (``servicePort`` an int is the Service's port, a name is looked up among its
ports), so the hop goes through kube-proxy like Kourier's. A Service that does not exist
(yet) or has no ClusterIP leaves the split unresolved (503 naming it), and the Ingress
not ``LoadBalancerReady``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

GROUP = "networking.internal.knative.dev"
VERSION = "v1alpha1"
CLASS_ANNOTATION = "networking.knative.dev/ingress.class"
INGRESS_CLASS = "harness.ingress.networking.knative.dev"
"""Our ingress class: config-network's ``ingress-class`` selects it."""
HASH_KEY = "K-Network-Hash"
HASH_OVERRIDE = "override"
PROBE_KEY = "K-Network-Probe"
CLUSTER_DOMAIN = "cluster.local"
EXTERNAL = "ExternalIP"
CLUSTER_LOCAL = "ClusterLocal"

ServiceKey = tuple[str, str]          # (namespace, name)
Address = tuple[str, int]


@dataclass(frozen=True)
class Split:
    namespace: str
    service: str
    port: int | str
    percent: int
    append_headers: tuple[tuple[str, str], ...] = ()
    address: Address | None = None    # resolved (ClusterIP, port); None: unresolved
    problem: str = ""                 # why it is unresolved


@dataclass(frozen=True)
class Path:
    prefix: str
    headers: tuple[tuple[str, str], ...]          # exact matches (name lower case)
    append_headers: tuple[tuple[str, str], ...]
    rewrite_host: str
    splits: tuple[Split, ...]
    ingress: str                                   # "namespace/name", for messages

    def matches(self, path: str, headers: Mapping[str, str]) -> bool:
        if not path.startswith(self.prefix):
            return False
        return all(headers.get(name) == value for name, value in self.headers)


@dataclass
class Table:
    """Host -> paths, for one listener."""

    hosts: dict[str, list[Path]] = field(default_factory=dict)

    def lookup(self, host: str, path: str, headers: Mapping[str, str]) -> Path | None:
        for candidate in self.hosts.get(host, ()):
            if candidate.matches(path, headers):
                return candidate
        return None


def is_ours(ingress: Mapping[str, Any], ingress_class: str = INGRESS_CLASS) -> bool:
    annotations = ingress.get("metadata", {}).get("annotations") or {}
    return annotations.get(CLASS_ANNOTATION) == ingress_class


def _go_json(value: Any) -> Any:
    """The spec as Go's ``json.Marshal`` of ``IngressSpec`` writes it: struct fields in
    declaration order, ``omitempty`` fields left out when empty, maps with sorted keys."""
    spec = value or {}

    def backend(split: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "serviceNamespace": split.get("serviceNamespace", ""),
            "serviceName": split.get("serviceName", ""),
            "servicePort": split.get("servicePort", 0),
        }
        if split.get("percent"):
            out["percent"] = int(split["percent"])
        if split.get("appendHeaders"):
            out["appendHeaders"] = dict(sorted(split["appendHeaders"].items()))
        return out

    def path(p: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if p.get("path"):
            out["path"] = p["path"]
        if p.get("rewriteHost"):
            out["rewriteHost"] = p["rewriteHost"]
        if p.get("headers"):
            out["headers"] = {k: {"exact": (v or {}).get("exact", "")}
                              for k, v in sorted(p["headers"].items())}
        out["splits"] = [backend(s) for s in p.get("splits") or []] \
            if p.get("splits") is not None else None
        if p.get("appendHeaders"):
            out["appendHeaders"] = dict(sorted(p["appendHeaders"].items()))
        return out

    def rule(r: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if r.get("hosts"):
            out["hosts"] = list(r["hosts"])
        if r.get("visibility"):
            out["visibility"] = r["visibility"]
        if r.get("http") is not None:
            paths = r["http"].get("paths")
            out["http"] = {"paths": [path(p) for p in paths] if paths is not None else None}
        return out

    out: dict[str, Any] = {}
    if spec.get("tls"):
        out["tls"] = [{k: t[k] for k in ("hosts", "secretName", "secretNamespace") if t.get(k)}
                      for t in spec["tls"]]
    if spec.get("rules"):
        out["rules"] = [rule(r) for r in spec["rules"]]
    if spec.get("httpOption"):
        out["httpOption"] = spec["httpOption"]
    return out


def compute_hash(ingress: Mapping[str, Any]) -> str:
    """Knative's ``ingress.ComputeHash``, hex: sha256 of the spec's JSON, then the
    namespace and name."""
    meta = ingress.get("metadata", {})
    data = json.dumps(_go_json(ingress.get("spec")), separators=(",", ":"),
                      ensure_ascii=False).encode()
    data += meta.get("namespace", "").encode() + meta.get("name", "").encode()
    return hashlib.sha256(data).hexdigest()


def _valid_tld(host: str) -> bool:
    tld = host.split(".")[-1]
    return len(tld) <= 63 and any(c == "-" or c > "9" for c in tld)


def expanded_hosts(hosts: Iterable[str], domain: str = CLUSTER_DOMAIN) -> set[str]:
    """Knative's ``ingress.ExpandedHosts``: each host, and the forms without
    ``.<domain>`` and ``.svc.<domain>``, keeping only valid top-level domains."""
    out: set[str] = set()
    for h in hosts:
        h = h.lower()
        for suffix in ("", f".{domain}", f".svc.{domain}"):
            if suffix and not h.endswith(suffix):
                continue
            th = h[: len(h) - len(suffix)] if suffix else h
            if _valid_tld(th):
                out.add(th)
    return out


def _port_of(service: Mapping[str, Any], port: int | str) -> int | None:
    for p in service.get("spec", {}).get("ports") or []:
        if (isinstance(port, int) and p.get("port") == port) or \
                (isinstance(port, str) and p.get("name") == port):
            return int(p["port"])
    if isinstance(port, str) and port.isdigit():
        return _port_of(service, int(port))
    return None


def resolve(namespace: str, name: str, port: int | str,
            services: Mapping[ServiceKey, Mapping[str, Any]]) -> tuple[Address | None, str]:
    """The Service's ``(ClusterIP, port)``, or None and why not."""
    svc = services.get((namespace, name))
    if svc is None:
        return None, f"Service {namespace}/{name} not found"
    ip = svc.get("spec", {}).get("clusterIP") or ""
    if not ip or ip == "None":
        kind = svc.get("spec", {}).get("type", "ClusterIP")
        return None, (f"Service {namespace}/{name} has no ClusterIP (type {kind}); this "
                      "ingress routes through kube-proxy to ClusterIPs only")
    number = _port_of(svc, port)
    if number is None:
        return None, f"Service {namespace}/{name} has no port {port!r}"
    return (ip, number), ""


def _headers(mapping: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in (mapping or {}).items()))


def _paths(ingress: Mapping[str, Any], rule: Mapping[str, Any], hash_: str,
           services: Mapping[ServiceKey, Mapping[str, Any]]) -> list[Path]:
    meta = ingress.get("metadata", {})
    label = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    plain: list[Path] = []
    for p in (rule.get("http") or {}).get("paths") or []:
        raw = p.get("splits") or []
        splits = []
        for s in raw:
            port = s.get("servicePort", 0)
            if isinstance(port, str) and port.isdigit():
                port = int(port)
            ns = s.get("serviceNamespace") or meta.get("namespace", "")
            address, problem = resolve(ns, s.get("serviceName", ""), port, services)
            percent = int(s.get("percent") or (100 if len(raw) == 1 else 0))
            splits.append(Split(ns, s.get("serviceName", ""), port, percent,
                                _headers(s.get("appendHeaders")), address, problem))
        plain.append(Path(
            prefix=p.get("path") or "/",
            headers=tuple(sorted((k.lower(), (v or {}).get("exact", ""))
                                 for k, v in (p.get("headers") or {}).items())),
            append_headers=_headers(p.get("appendHeaders")),
            rewrite_host=p.get("rewriteHost") or "", splits=tuple(splits), ingress=label))
    probes = [Path(prefix=p.prefix,
                   headers=tuple(sorted({**dict(p.headers),
                                         HASH_KEY.lower(): HASH_OVERRIDE}.items())),
                   append_headers=tuple(sorted({**dict(p.append_headers),
                                                HASH_KEY: hash_}.items())),
                   rewrite_host=p.rewrite_host, splits=p.splits, ingress=label)
              for p in plain]
    return probes + plain


def build_tables(ingresses: Iterable[Mapping[str, Any]],
                 services: Mapping[ServiceKey, Mapping[str, Any]],
                 domain: str = CLUSTER_DOMAIN) -> dict[str, Table]:
    """``{"public": Table, "private": Table}`` from our Ingresses (older ones first: a host
    claimed by two Ingresses goes to the one created first, its paths before the other's)."""
    tables = {"public": Table(), "private": Table()}
    ordered = sorted(ingresses, key=lambda i: (i.get("metadata", {}).get("creationTimestamp")
                                               or "", i.get("metadata", {}).get("uid", "")))
    for ing in ordered:
        if ing.get("metadata", {}).get("deletionTimestamp"):
            continue
        hash_ = compute_hash(ing)
        for rule in (ing.get("spec") or {}).get("rules") or []:
            paths = _paths(ing, rule, hash_, services)
            visibility = rule.get("visibility") or EXTERNAL
            listeners = ("private",) if visibility == CLUSTER_LOCAL else ("public", "private")
            for host in sorted(expanded_hosts(rule.get("hosts") or [], domain)):
                for name in listeners:
                    tables[name].hosts.setdefault(host, []).extend(paths)
    return tables


def problems(ingress: Mapping[str, Any],
             services: Mapping[ServiceKey, Mapping[str, Any]]) -> list[str]:
    """Why an Ingress's backends cannot all be reached (empty: they can)."""
    out: list[str] = []
    meta = ingress.get("metadata", {})
    for rule in (ingress.get("spec") or {}).get("rules") or []:
        for p in (rule.get("http") or {}).get("paths") or []:
            for s in p.get("splits") or []:
                port = s.get("servicePort", 0)
                if isinstance(port, str) and port.isdigit():
                    port = int(port)
                _addr, problem = resolve(s.get("serviceNamespace") or meta.get("namespace", ""),
                                         s.get("serviceName", ""), port, services)
                if problem and problem not in out:
                    out.append(problem)
    return out


# ---- status -------------------------------------------------------------------------------


def _condition(type_: str, status: str, now: str, old: Mapping[str, Mapping[str, Any]],
               reason: str = "", message: str = "") -> dict[str, Any]:
    prior = old.get(type_)
    same = prior is not None and prior.get("status") == status
    cond: dict[str, Any] = {"type": type_, "status": status,
                            "lastTransitionTime": prior.get("lastTransitionTime", now)
                            if same and prior else now}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def desired_status(ingress: Mapping[str, Any], problems_: list[str], *, public_domain: str,
                   private_domain: str, now: str) -> dict[str, Any]:
    """The status Knative's ``IngressStatus`` methods would leave: ``InitializeConditions``,
    ``MarkNetworkConfigured``, then ``MarkLoadBalancerReady(public, private)`` when every
    backend resolves (else ``MarkLoadBalancerNotReady``: Unknown, ``Uninitialized``),
    ``Ready`` from the living condition set, ``observedGeneration``. Conditions sorted by
    type as knative.dev/pkg's condition manager keeps them; a condition keeps its
    ``lastTransitionTime`` while its status does not change."""
    old_status = ingress.get("status") or {}
    old = {c.get("type"): c for c in old_status.get("conditions") or []}
    status: dict[str, Any] = {"observedGeneration": ingress.get("metadata", {})
                              .get("generation", 0)}
    conds = [_condition("NetworkConfigured", "True", now, old)]
    if problems_:
        conds.append(_condition("LoadBalancerReady", "Unknown", now, old, "Uninitialized",
                                "Waiting for load balancer to be ready: "
                                + "; ".join(problems_)))
        conds.append(_condition("Ready", "Unknown", now, old, "Uninitialized",
                                "Waiting for load balancer to be ready: "
                                + "; ".join(problems_)))
    else:
        conds.append(_condition("LoadBalancerReady", "True", now, old))
        conds.append(_condition("Ready", "True", now, old))
        status["publicLoadBalancer"] = {"ingress": [{"domainInternal": public_domain}]}
        status["privateLoadBalancer"] = {"ingress": [{"domainInternal": private_domain}]}
    status["conditions"] = sorted(conds, key=lambda c: c["type"])
    return status


MANAGED = ("observedGeneration", "conditions", "publicLoadBalancer", "privateLoadBalancer")


def same_status(current: Mapping[str, Any] | None, want: Mapping[str, Any]) -> bool:
    """True when ``current`` already says what ``want`` says, in the fields we write
    (:data:`MANAGED`; others, such as duck status ``annotations``, are left alone), the
    conditions' ``lastTransitionTime`` aside."""
    def strip(s: Mapping[str, Any] | None) -> dict[str, Any]:
        s = s or {}
        out = {k: s.get(k) for k in MANAGED}
        out["conditions"] = [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                             for c in s.get("conditions") or []]
        return out
    return strip(current) == strip(want)
