"""Knative Route traffic without processes: a Service's ``traffic`` block resolved to
revisions (latestRevision, revisionName, tags), programmed as an ingress split, and the
routingState / PA reachability that follows (a revision no longer routed scales to zero)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from harness.emulator.api.store import Store
from harness.emulator.controllers.knative import KnativeController

KSVC = "serving.knative.dev/services"
PA = "autoscaling.internal.knative.dev/podautoscalers"
REV = "serving.knative.dev/revisions"


class FakeIngress:
    def __init__(self) -> None:
        self.hosts: dict[str, list[tuple[str, int]]] = {}

    def set_split(self, host: str, ns: str, targets: list[tuple[str, int]]) -> None:
        self.hosts[host] = targets

    def remove_route(self, host: str) -> None:
        self.hosts.pop(host, None)


def _initialized(store: Store, rev: str) -> None:
    store.patch(PA, rev, {"status": {"conditions": [
        {"type": "ScaleTargetInitialized", "status": "True"}]}}, namespace="default",
        subresource="status")


def _state(store: Store, rev: str) -> tuple[str, str]:
    r = store.get(REV, rev, namespace="default")
    pa = store.get(PA, rev, namespace="default")
    return r["metadata"]["labels"]["serving.knative.dev/routingState"], pa["spec"].get(
        "reachability", "")


def test_traffic_block_split_tags_and_reserve() -> None:
    store, ingress = Store(), FakeIngress()
    ctrl = KnativeController(store, ingress=ingress)

    def sync() -> None:
        for _ in range(2):
            asyncio.run(ctrl.reconcile(("default", "svc")))

    def template(latency: str) -> dict[str, Any]:
        return {"spec": {"containers": [{"image": "m", "env": [
            {"name": "REQUEST_LATENCY", "value": latency}]}]}}

    store.create(KSVC, {"metadata": {"name": "svc"}, "spec": {"template": template("1ms")}},
                 namespace="default")
    sync()
    assert _state(store, "svc-00001")[0] == "pending"
    _initialized(store, "svc-00001")
    sync()
    assert ingress.hosts["svc.default.example.com"] == [("svc-00001", 100)]
    assert _state(store, "svc-00001") == ("active", "Reachable")

    ksvc = store.get(KSVC, "svc", namespace="default")
    ksvc["spec"]["template"] = template("2ms")
    ksvc["spec"]["traffic"] = [
        {"revisionName": "svc-00001", "percent": 70, "tag": "stable"},
        {"latestRevision": True, "percent": 30, "tag": "canary"}]
    store.update(KSVC, copy.deepcopy(ksvc), namespace="default")
    sync()
    # the new revision is not Ready: latestRevision still resolves to the old one
    assert ingress.hosts["svc.default.example.com"] == [("svc-00001", 70), ("svc-00001", 30)]
    assert _state(store, "svc-00002")[0] == "pending"
    _initialized(store, "svc-00002")
    sync()
    assert ingress.hosts["svc.default.example.com"] == [("svc-00001", 70), ("svc-00002", 30)]
    assert ingress.hosts["stable-svc.default.example.com"] == [("svc-00001", 100)]
    assert ingress.hosts["canary-svc.default.example.com"] == [("svc-00002", 100)]
    route = store.get("serving.knative.dev/routes", "svc", namespace="default")
    assert [(t["revisionName"], t["percent"], t.get("url")) for t in route["status"][
        "traffic"]] == [("svc-00001", 70, "http://stable-svc.default.example.com"),
                        ("svc-00002", 30, "http://canary-svc.default.example.com")]
    assert _state(store, "svc-00001") == ("active", "Reachable")

    ksvc = store.get(KSVC, "svc", namespace="default")
    ksvc["spec"]["traffic"] = [{"latestRevision": True, "percent": 100}]
    store.update(KSVC, ksvc, namespace="default")
    sync()
    assert ingress.hosts == {"svc.default.example.com": [("svc-00002", 100)]}
    assert _state(store, "svc-00001") == ("reserve", "Unreachable")

    ksvc = store.get(KSVC, "svc", namespace="default")
    ksvc["spec"]["traffic"] = [{"revisionName": "svc-00009", "percent": 100}]
    store.update(KSVC, ksvc, namespace="default")
    sync()
    route = store.get("serving.knative.dev/routes", "svc", namespace="default")
    ready = next(c for c in route["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "RevisionMissing" and "svc-00009" in ready["message"]
    assert ingress.hosts == {"svc.default.example.com": [("svc-00002", 100)]}  # kept


def test_kserve_canary_traffic_and_rollout_bookkeeping() -> None:
    """``createKnativeService`` and ``PropagateStatus``: p % to the latest revision, the
    rest to the last one rolled out at 100 %; a revision becomes rolled out only when it
    gets 100 % as the latest."""
    from harness.emulator.controllers.kserve import rollout_status, traffic_targets

    assert traffic_targets(None, "r-1") == [{"latestRevision": True, "percent": 100}]
    assert traffic_targets(20, None) == [{"latestRevision": True, "percent": 100}]
    assert traffic_targets(20, "r-1") == [
        {"latestRevision": True, "percent": 20},
        {"tag": "prev", "revisionName": "r-1", "latestRevision": False, "percent": 80}]
    assert traffic_targets(100, "r-1") == [{"latestRevision": True, "percent": 100}]

    first = {"latestReadyRevisionName": "r-1", "latestCreatedRevisionName": "r-1",
             "traffic": [{"revisionName": "r-1", "latestRevision": True, "percent": 100}]}
    rolled = rollout_status({}, first)
    assert rolled == {"latestRolledoutRevision": "r-1"}
    canary = {"latestReadyRevisionName": "r-2", "latestCreatedRevisionName": "r-2",
              "traffic": [{"revisionName": "r-2", "latestRevision": True, "percent": 20},
                          {"revisionName": "r-1", "latestRevision": False, "percent": 80}]}
    assert rollout_status(rolled, canary) == rolled  # r-2 is not rolled out at 20 %
    promoted = {**canary, "traffic": [{"revisionName": "r-2", "latestRevision": True,
                                       "percent": 100}]}
    assert rollout_status(rolled, promoted) == {"latestRolledoutRevision": "r-2",
                                                "previousRolledoutRevision": "r-1"}
