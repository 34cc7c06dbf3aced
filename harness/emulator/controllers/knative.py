"""The Knative Serving controller: Service -> Configuration + Route; Configuration ->
Revision ``<config>-0000N``; Revision -> PodAutoscaler + Deployment ``<rev>-deployment``;
and the status of each, from the bottom up (``knative-kpa.md`` §0, §10).

One level-triggered pass per Knative Service does the whole chain. The Deployment is
created with the revision's initial replicas and afterwards only the KPA changes its
``spec.replicas``. The Revision's ``Active`` condition mirrors the PA's; it turns Ready
once the PA reports ``ScaleTargetInitialized`` (its initial scale was reached once).
The Route follows the Knative Service's ``traffic`` block (default: 100 % to the latest
ready revision): ``latestRevision: true`` targets resolve to the latest ready revision,
``revisionName`` targets to that revision once it is Ready (else the Route reports
``RevisionMissing`` and keeps its last traffic), ``tag`` targets get their own
``<tag>-<ksvc>.<ns>.<domain>`` URL. With an ingress attached it programs the split on
``<ksvc>.<ns>.<domain>`` and ``<isvc>.<ns>.<domain>`` and each tag's host. Revisions carry
``serving.knative.dev/routingState`` (``active`` when routed, ``reserve`` when Ready and
not routed, ``pending`` before), and their PodAutoscaler's ``spec.reachability`` follows
(``Unreachable`` for reserve: min-scale no longer holds and it scales to zero).
"""

from __future__ import annotations

import copy
from collections.abc import Hashable, Iterable
from typing import Any

from harness.emulator.api.store import Store
from harness.emulator.api.subscriptions import WatchEvent
from harness.emulator.controllers.base import (
    Controller,
    apply,
    condition,
    owner_ref,
    set_status,
)
from harness.emulator.controllers.scheduler import record_event
from harness.objects import (
    AUTOSCALING_PREFIX,
    CONFIGURATION_GENERATION_LABEL,
    CONFIGURATION_LABEL,
    CONFIGURATION_UID_LABEL,
    ISVC_LABEL,
    REVISION_LABEL,
    REVISION_UID_LABEL,
    ROUTING_STATE_LABEL,
    SERVICE_LABEL,
    condition_status,
    get_condition,
)

KSVC = "serving.knative.dev/services"
CONFIG = "serving.knative.dev/configurations"
REVISION = "serving.knative.dev/revisions"
ROUTE = "serving.knative.dev/routes"
PA = "autoscaling.internal.knative.dev/podautoscalers"
DEPLOY = "apps/deployments"
DEFAULT_DOMAIN = "example.com"
QUEUE_PROXY_IMAGE = "gcr.io/knative-releases/knative.dev/serving/cmd/queue"


def revision_name(config: str, generation: int) -> str:
    return f"{config}-{generation:05d}"


def initial_replicas(annotations: dict[str, str]) -> int:
    def num(key: str, default: int) -> int:
        for k in (AUTOSCALING_PREFIX + key, AUTOSCALING_PREFIX + _camel(key)):
            if k in annotations:
                try:
                    return int(annotations[k])
                except ValueError:
                    return default
        return default
    return max(num("initial-scale", 1), num("min-scale", 0))


def _camel(key: str) -> str:
    head, *rest = key.split("-")
    return head + "".join(p.title() for p in rest)


class KnativeController(Controller):
    """Reconciles Knative Services top-down and their status bottom-up."""

    name = "knative"
    resources = (KSVC, CONFIG, REVISION, ROUTE, PA, DEPLOY)

    def __init__(self, store: Store, *, ingress: Any = None,
                 domain: str = DEFAULT_DOMAIN) -> None:
        super().__init__(store)
        self.ingress = ingress
        self.domain = domain
        self._hosts: dict[tuple[str, str], set[str]] = {}

    def keys_for(self, resource: str, event: WatchEvent) -> Iterable[Hashable]:
        meta = event.object["metadata"]
        ns = meta.get("namespace", "")
        if resource == KSVC:
            if event.type == "DELETED":
                self._drop_routes(ns, meta["name"])
                return []
            return [(ns, meta["name"])]
        labels = meta.get("labels") or {}
        if resource == DEPLOY:
            labels = ((event.object.get("spec") or {}).get("template") or {}).get(
                "metadata", {}).get("labels") or labels
        svc = labels.get(SERVICE_LABEL)
        return [(ns, svc)] if svc else []

    async def reconcile(self, key: Hashable) -> None:
        ns, name = key  # type: ignore[misc]
        ksvc = self.store.try_get(KSVC, name, namespace=ns)
        if ksvc is None or ksvc["metadata"].get("deletionTimestamp"):
            self._drop_routes(ns, name)
            return
        template = copy.deepcopy((ksvc.get("spec") or {}).get("template") or {})
        labels = {SERVICE_LABEL: name, **{k: v for k, v in (ksvc["metadata"].get(
            "labels") or {}).items()}}
        if self.store.try_get(CONFIG, name, namespace=ns) is None:
            record_event(self.store, ksvc, "Normal", "Created",
                         f'Created Configuration "{name}"', "service-controller")
        config = apply(self.store, CONFIG, {
            "apiVersion": "serving.knative.dev/v1", "kind": "Configuration",
            "metadata": {"name": name, "namespace": ns, "labels": labels,
                         "ownerReferences": [owner_ref(ksvc)]},
            "spec": {"template": template}})
        gen = int(config["metadata"].get("generation", 1))
        rev = self._revision(config, template, gen, name)
        if not self._pa_and_deployment(rev):
            return
        rev = self._revision_status(rev)
        revisions = [r for r in self.store.list(REVISION, namespace=ns,
                                                label_selector=f"{CONFIGURATION_LABEL}={name}")["items"]]
        ready = [r for r in revisions if condition_status(r, "Ready") == "True"]
        latest_ready = max(ready, key=lambda r: int(r["metadata"]["labels"].get(
            CONFIGURATION_GENERATION_LABEL, "0")), default=None)
        config = self._config_status(config, rev, latest_ready)
        route = self._route(ksvc, latest_ready, revisions)
        self._routing_state(revisions, route)
        self._ksvc_status(ksvc, config, route, rev, latest_ready)

    # ------------------------------------------------------------------ top-down

    def _revision(self, config: dict[str, Any], template: dict[str, Any], gen: int,
                  svc: str) -> dict[str, Any]:
        meta = config["metadata"]
        ns = meta["namespace"]
        name = revision_name(meta["name"], gen)
        current = self.store.try_get(REVISION, name, namespace=ns)
        if current is not None:
            return current
        tmeta = template.get("metadata") or {}
        labels = {**(tmeta.get("labels") or {}), CONFIGURATION_LABEL: meta["name"],
                  CONFIGURATION_GENERATION_LABEL: str(gen),
                  CONFIGURATION_UID_LABEL: meta["uid"], SERVICE_LABEL: svc,
                  ROUTING_STATE_LABEL: "pending"}
        spec = copy.deepcopy(template.get("spec") or {})
        spec.setdefault("containerConcurrency", 0)
        spec.setdefault("timeoutSeconds", 300)
        record_event(self.store, config, "Normal", "Created", f'Created Revision "{name}"',
                     "configuration-controller")
        return self.store.create(REVISION, {
            "metadata": {"name": name, "labels": labels,
                         "annotations": dict(tmeta.get("annotations") or {}),
                         "ownerReferences": [owner_ref(config)]},
            "spec": spec}, namespace=ns)

    def _pa_and_deployment(self, rev: dict[str, Any]) -> bool:
        """Create the PA and the Deployment; False when a Deployment of that name exists
        that the revision does not own (Knative marks it ``NotOwned`` and records the
        reconciler's error as a Warning ``InternalError`` event on the Revision)."""
        meta = rev["metadata"]
        ns, name = meta["namespace"], meta["name"]
        spec = rev.get("spec") or {}
        annotations = meta.get("annotations") or {}
        labels = {**(meta.get("labels") or {}), REVISION_LABEL: name,
                  REVISION_UID_LABEL: meta["uid"]}
        labels.pop(ROUTING_STATE_LABEL, None)
        if self.store.try_get(PA, name, namespace=ns) is None:
            self.store.create(PA, {
                "metadata": {"name": name, "labels": labels, "annotations": dict(annotations),
                             "ownerReferences": [owner_ref(rev)]},
                "spec": {"containerConcurrency": int(spec.get("containerConcurrency", 0)),
                         "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                            "name": f"{name}-deployment"},
                         "reachability": "Reachable", "protocolType": "http1"}},
                namespace=ns)
        dname = f"{name}-deployment"
        existing = self.store.try_get(DEPLOY, dname, namespace=ns)
        if existing is not None:
            owners = existing["metadata"].get("ownerReferences") or []
            if any(o.get("uid") == meta["uid"] and o.get("controller") for o in owners):
                return True
            self._not_owned(rev, dname)
            return False
        pod_labels = dict(labels)
        pod_labels.setdefault("app", name)
        pod_annotations = {k: v for k, v in annotations.items()
                           if not k.startswith(AUTOSCALING_PREFIX)}
        pod_spec = {k: copy.deepcopy(v) for k, v in spec.items()
                    if k not in ("containerConcurrency", "timeoutSeconds",
                                 "responseStartTimeoutSeconds", "idleTimeoutSeconds")}
        pod_spec.setdefault("terminationGracePeriodSeconds", int(spec.get("timeoutSeconds",
                                                                          300)))
        selector = {REVISION_LABEL: name, REVISION_UID_LABEL: meta["uid"]}
        self.store.create(DEPLOY, {
            "metadata": {"name": dname, "labels": labels,
                         "ownerReferences": [owner_ref(rev)]},
            "spec": {"replicas": initial_replicas(annotations),
                     "selector": {"matchLabels": selector},
                     "progressDeadlineSeconds": 600,
                     "template": {"metadata": {"labels": pod_labels,
                                               "annotations": pod_annotations},
                                  "spec": pod_spec}}}, namespace=ns)
        return True

    def _not_owned(self, rev: dict[str, Any], deployment: str) -> None:
        prev = (rev.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "ResourcesAvailable" and c.get("reason") == "NotOwned"
               for c in prev):
            return
        message = f'There is an existing Deployment "{deployment}" that we do not own.'
        status = {**(rev.get("status") or {}),
                  "observedGeneration": rev["metadata"].get("generation", 1),
                  "conditions": [
                      condition("Ready", "False", "NotOwned", message, prev),
                      condition("ResourcesAvailable", "False", "NotOwned", message, prev)]}
        set_status(self.store, REVISION, rev, status)
        record_event(self.store, rev, "Warning", "InternalError",
                     f'revision: "{rev["metadata"]["name"]}" does not own Deployment: '
                     f'"{deployment}"', "revision-controller")

    def _route(self, ksvc: dict[str, Any], latest_ready: dict[str, Any] | None,
               revisions: list[dict[str, Any]]) -> dict[str, Any]:
        meta = ksvc["metadata"]
        ns, name = meta["namespace"], meta["name"]
        wanted = copy.deepcopy((ksvc.get("spec") or {}).get("traffic") or [
            {"latestRevision": True, "percent": 100}])
        spec_traffic = []
        for t in wanted:
            t = dict(t)
            if not t.get("revisionName"):
                t.setdefault("latestRevision", True)
                t["configurationName"] = name
            spec_traffic.append(t)
        created_route = self.store.try_get(ROUTE, name, namespace=ns) is None
        route = apply(self.store, ROUTE, {
            "apiVersion": "serving.knative.dev/v1", "kind": "Route",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {SERVICE_LABEL: name},
                         "ownerReferences": [owner_ref(ksvc)]},
            "spec": {"traffic": spec_traffic}})
        if created_route:
            record_event(self.store, ksvc, "Normal", "Created", f'Created Route "{name}"',
                         "service-controller")
        ready = {r["metadata"]["name"] for r in revisions if condition_status(r, "Ready") == "True"}
        traffic: list[dict[str, Any]] = []
        missing = ""
        for t in spec_traffic:
            if t.get("revisionName"):
                rev_name = str(t["revisionName"])
                latest = False
            elif latest_ready is not None:
                rev_name, latest = latest_ready["metadata"]["name"], True
            else:
                rev_name, latest = "", True
            if not rev_name or rev_name not in ready:
                missing = missing or (f'Revision "{rev_name}" referenced in traffic not found.'
                                      if rev_name else f'Configuration "{name}" does not have '
                                      "any ready Revision.")
                continue
            entry: dict[str, Any] = {"revisionName": rev_name, "latestRevision": latest,
                                     "percent": int(t.get("percent") or 0)}
            if t.get("tag"):
                entry["tag"] = t["tag"]
                entry["url"] = f"http://{t['tag']}-{name}.{ns}.{self.domain}"
            traffic.append(entry)
        url = f"http://{name}.{ns}.{self.domain}"
        old = route.get("status") or {}
        prev = old.get("conditions") or []
        ok = not missing
        if not ok:
            traffic = list(old.get("traffic") or [])  # keeps serving what it served
        status = {
            "observedGeneration": route["metadata"].get("generation", 1),
            "url": url,
            "address": {"url": f"http://{name}.{ns}.svc.cluster.local"},
            "traffic": traffic,
            "conditions": [
                condition("AllTrafficAssigned", "True" if ok else "Unknown",
                          "" if ok else "RevisionMissing", missing, prev),
                condition("IngressReady", "True" if traffic else "Unknown", "", "", prev),
                condition("Ready", "True" if ok else "Unknown",
                          "" if ok else "RevisionMissing", missing, prev)],
        }
        route = set_status(self.store, ROUTE, route, status)
        if traffic and self.ingress is not None:
            split = [(t["revisionName"], int(t["percent"])) for t in traffic]
            hosts = {f"{name}.{ns}.{self.domain}": split}
            isvc = (meta.get("labels") or {}).get(ISVC_LABEL)
            if isvc:
                hosts[f"{isvc}.{ns}.{self.domain}"] = split
            for t in traffic:
                if t.get("tag"):
                    hosts[f"{t['tag']}-{name}.{ns}.{self.domain}"] = [(t["revisionName"], 100)]
            for host in self._hosts.get((ns, name), set()) - set(hosts):
                self.ingress.remove_route(host)
            for host, targets in sorted(hosts.items()):
                self.ingress.set_split(host, ns, targets)
            self._hosts[(ns, name)] = set(hosts)
        return route

    def _routing_state(self, revisions: list[dict[str, Any]], route: dict[str, Any]) -> None:
        """``routingState`` on each revision, ``spec.reachability`` on its PA."""
        routed = {t.get("revisionName") for t in (route.get("status") or {}).get(
            "traffic") or [] if int(t.get("percent") or 0) > 0 or t.get("tag")}
        for rev in revisions:
            meta = rev["metadata"]
            name = meta["name"]
            if name in routed:
                state = "active"
            elif condition_status(rev, "Ready") == "True":
                state = "reserve"
            else:
                state = "pending"
            if (meta.get("labels") or {}).get(ROUTING_STATE_LABEL) != state:
                self.store.patch(REVISION, name, {"metadata": {"labels": {
                    ROUTING_STATE_LABEL: state}}}, namespace=meta["namespace"])
            if state == "pending":
                continue
            reach = "Reachable" if state == "active" else "Unreachable"
            pa = self.store.try_get(PA, name, namespace=meta["namespace"])
            if pa is not None and (pa.get("spec") or {}).get("reachability") != reach:
                self.store.patch(PA, name, {"spec": {"reachability": reach}},
                                 namespace=meta["namespace"])

    def _drop_routes(self, ns: str, name: str) -> None:
        for host in self._hosts.pop((ns, name), set()):
            if self.ingress is not None:
                self.ingress.remove_route(host)

    # ------------------------------------------------------------------ bottom-up

    def _revision_status(self, rev: dict[str, Any]) -> dict[str, Any]:
        meta = rev["metadata"]
        ns, name = meta["namespace"], meta["name"]
        pa = self.store.try_get(PA, name, namespace=ns)
        dep = self.store.try_get(DEPLOY, f"{name}-deployment", namespace=ns)
        old = rev.get("status") or {}
        prev = old.get("conditions") or []
        initialized = condition_status(pa, "ScaleTargetInitialized") == "True" or (
            condition_status(rev, "Ready") == "True")
        active = get_condition(pa, "Active")
        conditions = [
            condition("Active", active["status"] if active else "Unknown",
                      (active or {}).get("reason", "Deploying"),
                      (active or {}).get("message", ""), prev, severity="Info"),
            condition("ContainerHealthy", "True" if initialized else "Unknown", "", "", prev),
            condition("Ready", "True" if initialized else "Unknown",
                      "" if initialized else "Deploying", "", prev),
            condition("ResourcesAvailable", "True" if initialized else "Unknown",
                      "" if initialized else "Deploying", "", prev),
        ]
        status = dict(old)
        status.update({"observedGeneration": meta.get("generation", 1),
                       "conditions": conditions,
                       "containerStatuses": [{"name": "kserve-container"}]})
        if dep is not None:
            status["serviceName"] = name
        pa_status = (pa or {}).get("status") or {}
        if pa_status.get("actualScale") is not None:
            status["actualReplicas"] = pa_status["actualScale"]
        desired = pa_status.get("desiredScale")
        if desired is not None and desired >= 0:
            status["desiredReplicas"] = desired
        return set_status(self.store, REVISION, rev, status)

    def _config_status(self, config: dict[str, Any], rev: dict[str, Any],
                       latest_ready: dict[str, Any] | None) -> dict[str, Any]:
        prev = (config.get("status") or {}).get("conditions") or []
        ok = latest_ready is not None and latest_ready["metadata"]["name"] == rev[
            "metadata"]["name"]
        status: dict[str, Any] = {
            "observedGeneration": config["metadata"].get("generation", 1),
            "latestCreatedRevisionName": rev["metadata"]["name"],
            "conditions": [condition("Ready", "True" if ok else "Unknown", "", "", prev)]}
        if latest_ready is not None:
            status["latestReadyRevisionName"] = latest_ready["metadata"]["name"]
            was = (config.get("status") or {}).get("latestReadyRevisionName")
            if not was:
                record_event(self.store, config, "Normal", "ConfigurationReady",
                             "Configuration becomes ready", "configuration-controller")
            if was != status["latestReadyRevisionName"]:
                record_event(self.store, config, "Normal", "LatestReadyUpdate",
                             "LatestReadyRevisionName updated to "
                             f'"{status["latestReadyRevisionName"]}"',
                             "configuration-controller")
        return set_status(self.store, CONFIG, config, status)

    def _ksvc_status(self, ksvc: dict[str, Any], config: dict[str, Any],
                     route: dict[str, Any], rev: dict[str, Any],
                     latest_ready: dict[str, Any] | None) -> None:
        prev = (ksvc.get("status") or {}).get("conditions") or []
        cfg_ok = condition_status(config, "Ready")
        route_ok = condition_status(route, "Ready")
        ready = "True" if cfg_ok == "True" and route_ok == "True" else "Unknown"
        cst = config.get("status") or {}
        rst = route.get("status") or {}
        status: dict[str, Any] = {
            "observedGeneration": ksvc["metadata"].get("generation", 1),
            "latestCreatedRevisionName": cst.get("latestCreatedRevisionName"),
            "url": rst.get("url"), "address": rst.get("address"),
            "traffic": rst.get("traffic") or [],
            "conditions": [condition("ConfigurationsReady", cfg_ok, "", "", prev),
                           condition("Ready", ready, "", "", prev),
                           condition("RoutesReady", route_ok, "", "", prev)]}
        if cst.get("latestReadyRevisionName"):
            status["latestReadyRevisionName"] = cst["latestReadyRevisionName"]
        set_status(self.store, KSVC, ksvc, status)
