"""Client-side conformance checks, run under one version of the official ``kubernetes``
client (30.x, 36.x or 37.x) against a running emulator.

Usage: ``python client_conformance.py KUBECONFIG`` with the client version of choice first
on PYTHONPATH. The server must keep a short history (``Store(history=200)``) so the 410
check can push a resume point out of it. Prints one line per check and exits with the
number of failed checks (0 = all passed). Imports nothing from the harness.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import kubernetes
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

CHECKS: list[Callable[[Any], None]] = []


def check(fn: Callable[[Any], None]) -> Callable[[Any], None]:
    CHECKS.append(fn)
    return fn


class Ctx:
    def __init__(self, kubeconfig: str) -> None:
        self.api = config.new_client_from_config(config_file=kubeconfig)
        self.api.configuration.proxy = None
        self.v1 = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.co = client.CustomObjectsApi(self.api)
        major = kubernetes.__version__.split(".")[0]
        self.ns = f"cv{major}-{uuid.uuid4().hex[:6]}"


def expect_status(code: int, fn: Callable[[], Any], reason: str | None = None) -> ApiException:
    try:
        fn()
    except ApiException as exc:
        assert exc.status == code, f"expected {code}, got {exc.status}: {exc.body}"
        body = json.loads(exc.body)
        assert body["kind"] == "Status" and body["code"] == code, body
        if reason:
            assert body["reason"] == reason, body
        return exc
    raise AssertionError(f"expected HTTP {code}, the call succeeded")


def pod(name: str | None = None, labels: dict[str, str] | None = None,
        generate: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"labels": labels or {}}
    if name:
        meta["name"] = name
    if generate:
        meta["generateName"] = generate
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "main", "image": "model:1",
                                     "resources": {"requests": {"cpu": "1"}}}]}}


def isvc(name: str) -> dict[str, Any]:
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": name},
            "spec": {"predictor": {"minReplicas": 1, "model": {"modelFormat": {"name": "x"}}}}}


@check
def discovery_and_nodes(c: Ctx) -> None:
    nodes = c.v1.list_node().items
    assert nodes, "no nodes"
    gpu = [n for n in nodes if "gpu.nvidia.com/class" in (n.metadata.labels or {})]
    assert len({n.metadata.labels["gpu.nvidia.com/class"] for n in gpu}) >= 2
    assert all(isinstance(v, str) for n in nodes for v in n.status.allocatable.values())
    assert c.v1.create_namespace({"metadata": {"name": c.ns}}).status.phase == "Active"


@check
def create_get_list_and_errors(c: Ctx) -> None:
    created = c.v1.create_namespaced_pod(c.ns, pod(generate="web-", labels={"app": "web"}))
    name = created.metadata.name
    assert name.startswith("web-") and len(name) == 9, name
    assert created.metadata.uid and created.metadata.creation_timestamp
    assert created.metadata.resource_version.isdigit()
    got = c.v1.read_namespaced_pod(name, c.ns)
    assert got.metadata.resource_version == created.metadata.resource_version
    c.v1.create_namespaced_pod(c.ns, pod("db-0", {"app": "db", "tier": "data"}))
    expect_status(409, lambda: c.v1.create_namespaced_pod(c.ns, pod("db-0")), "AlreadyExists")
    expect_status(404, lambda: c.v1.read_namespaced_pod("nope", c.ns), "NotFound")
    expect_status(422, lambda: c.v1.create_namespaced_pod(c.ns, pod("Bad_Name")), "Invalid")
    expect_status(404, lambda: c.v1.create_namespaced_pod("no-such-ns", pod("x")))
    stale = c.v1.read_namespaced_pod("db-0", c.ns)
    c.v1.patch_namespaced_pod("db-0", c.ns, {"metadata": {"labels": {"v": "2"}}})
    stale.metadata.labels["v"] = "3"
    expect_status(409, lambda: c.v1.replace_namespaced_pod("db-0", c.ns, stale), "Conflict")
    empty = c.v1.list_namespaced_pod(c.ns, label_selector="app=none")
    assert empty.items == [] and empty.metadata.resource_version


@check
def selectors(c: Ctx) -> None:
    def names(**kw: Any) -> list[str]:
        return sorted(p.metadata.name for p in c.v1.list_namespaced_pod(c.ns, **kw).items)

    assert names(label_selector="app=db") == ["db-0"]
    assert names(label_selector="app in (db,web)").__len__() == 2
    assert names(label_selector="tier") == ["db-0"]
    assert names(label_selector="!tier,app") != ["db-0"]
    assert names(label_selector="app notin (db)")[0].startswith("web-")
    assert names(field_selector="metadata.name=db-0") == ["db-0"]
    assert names(field_selector="status.phase=Pending").__len__() == 2
    assert names(field_selector="metadata.name!=db-0", label_selector="app") != ["db-0"]
    expect_status(400, lambda: c.v1.list_namespaced_pod(c.ns, label_selector="app in db"))
    expect_status(400, lambda: c.v1.list_namespaced_pod(c.ns, field_selector="spec.bogus=1"))


@check
def patch_types(c: Ctx) -> None:
    # strategic merge: containers merge by name, labels merge
    c.v1.patch_namespaced_pod("db-0", c.ns, {"metadata": {"labels": {"extra": "1"}},
                                             "spec": {"containers": [{"name": "side",
                                                                      "image": "s:1"}]}})
    p = c.v1.read_namespaced_pod("db-0", c.ns)
    assert [x.name for x in p.spec.containers] == ["main", "side"], p.spec.containers
    assert p.metadata.labels["app"] == "db" and p.metadata.labels["extra"] == "1"
    # JSON patch (a list body)
    c.v1.patch_namespaced_pod("db-0", c.ns, [
        {"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}},
        {"op": "remove", "path": "/metadata/labels/extra"}])
    p = c.v1.read_namespaced_pod("db-0", c.ns)
    assert p.metadata.annotations == {"a": "b"} and "extra" not in p.metadata.labels
    expect_status(422, lambda: c.v1.patch_namespaced_pod(
        "db-0", c.ns, [{"op": "test", "path": "/metadata/name", "value": "other"}]))
    # merge patch on a custom resource; strategic merge on it is 415
    c.co.create_namespaced_custom_object("serving.kserve.io", "v1beta1", c.ns,
                                         "inferenceservices", isvc("iris"))
    got = c.co.patch_namespaced_custom_object(
        "serving.kserve.io", "v1beta1", c.ns, "inferenceservices", "iris",
        {"spec": {"predictor": {"minReplicas": None, "maxReplicas": 3}}})
    assert got["spec"]["predictor"] == {"maxReplicas": 3, "model": {"modelFormat":
                                                                     {"name": "x"}}}, got
    assert got["metadata"]["generation"] == 2
    req = urllib.request.Request(
        f"{c.api.configuration.host}/apis/serving.kserve.io/v1beta1/namespaces/{c.ns}/"
        "inferenceservices/iris", data=b'{"spec":{}}', method="PATCH",
        headers={"Content-Type": "application/strategic-merge-patch+json"})
    try:
        urllib.request.urlopen(req, timeout=10)
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read())
        assert exc.code == 415 and body["reason"] == "UnsupportedMediaType", body
    else:
        raise AssertionError("strategic merge patch on a custom resource was accepted")


@check
def status_subresource(c: Ctx) -> None:
    c.v1.patch_namespaced_pod_status("db-0", c.ns, {"status": {
        "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})
    c.v1.patch_namespaced_pod_status("db-0", c.ns, {"status": {
        "conditions": [{"type": "PodScheduled", "status": "True"}]}})
    p = c.v1.read_namespaced_pod("db-0", c.ns)
    assert p.status.phase == "Running"
    assert sorted(x.type for x in p.status.conditions) == ["PodScheduled", "Ready"]
    # a main-resource update cannot change the status
    c.v1.patch_namespaced_pod("db-0", c.ns, {"status": {"phase": "Failed"}})
    assert c.v1.read_namespaced_pod("db-0", c.ns).status.phase == "Running"
    c.co.patch_namespaced_custom_object_status(
        "serving.kserve.io", "v1beta1", c.ns, "inferenceservices", "iris",
        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    got = c.co.get_namespaced_custom_object("serving.kserve.io", "v1beta1", c.ns,
                                            "inferenceservices", "iris")
    assert got["status"]["conditions"][0]["type"] == "Ready"
    assert got["metadata"]["generation"] == 2  # status writes do not bump it


@check
def scale_subresource(c: Ctx) -> None:
    dep = {"metadata": {"name": "predictor"}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "predictor"}},
        "template": {"metadata": {"labels": {"app": "predictor"}},
                     "spec": {"containers": [{"name": "m", "image": "m:1"}]}}}}
    c.apps.create_namespaced_deployment(c.ns, dep)
    scale = c.apps.read_namespaced_deployment_scale("predictor", c.ns)
    assert scale.spec.replicas == 1 and scale.status.selector == "app=predictor"
    c.apps.patch_namespaced_deployment_scale("predictor", c.ns, {"spec": {"replicas": 4}})
    assert c.apps.read_namespaced_deployment("predictor", c.ns).spec.replicas == 4
    scale = c.apps.read_namespaced_deployment_scale("predictor", c.ns)
    scale.spec.replicas = 2
    c.apps.replace_namespaced_deployment_scale("predictor", c.ns, scale)
    assert c.apps.read_namespaced_deployment("predictor", c.ns).spec.replicas == 2


@check
def watch_initial_timeout_and_resume(c: Ctx) -> None:
    t0 = time.monotonic()
    events = list(watch.Watch().stream(c.v1.list_namespaced_pod, c.ns, timeout_seconds=1))
    took = time.monotonic() - t0
    assert 0.8 <= took < 5, f"timeoutSeconds=1 watch took {took:.2f} s"
    assert [e["type"] for e in events] == ["ADDED", "ADDED"], [e["type"] for e in events]
    rv = c.v1.list_namespaced_pod(c.ns).metadata.resource_version
    c.v1.create_namespaced_pod(c.ns, pod("late", {"app": "late"}))
    c.v1.delete_namespaced_pod("late", c.ns)
    seen = [(e["type"], e["object"].metadata.name) for e in watch.Watch().stream(
        c.v1.list_namespaced_pod, c.ns, resource_version=rv, timeout_seconds=1)]
    assert seen == [("ADDED", "late"), ("DELETED", "late")], seen
    # label-selected watch: a pod leaving the selection is seen as DELETED
    rv = c.v1.list_namespaced_pod(c.ns).metadata.resource_version
    c.v1.patch_namespaced_pod("db-0", c.ns, {"metadata": {"labels": {"app": "moved"}}})
    seen = [(e["type"], e["object"].metadata.name) for e in watch.Watch().stream(
        c.v1.list_namespaced_pod, c.ns, resource_version=rv, label_selector="app=db",
        timeout_seconds=1)]
    assert seen == [("DELETED", "db-0")], seen


@check
def watch_bookmarks(c: Ctx) -> None:
    rv = c.v1.list_namespaced_pod(c.ns).metadata.resource_version
    events = list(watch.Watch().stream(c.v1.list_namespaced_pod, c.ns, resource_version=rv,
                                       allow_watch_bookmarks=True, timeout_seconds=2))
    marks = [e for e in events if e["type"] == "BOOKMARK"]
    assert marks, [e["type"] for e in events]
    raw = marks[-1]["raw_object"]
    assert int(raw["metadata"]["resourceVersion"]) >= int(rv), raw
    assert all(e is not None for e in events)  # no blank lines on the wire


@check
def watch_expired_410(c: Ctx) -> None:
    old = c.v1.list_namespaced_pod(c.ns).metadata.resource_version
    for i in range(260):  # push the resume point out of a history of 200
        c.v1.create_namespaced_config_map(c.ns, {"metadata": {"name": f"cm-{i}"}})
    try:
        list(watch.Watch().stream(c.v1.list_namespaced_pod, c.ns, resource_version=old,
                                  timeout_seconds=2))
    except ApiException as exc:
        assert exc.status == 410, exc
    else:
        raise AssertionError("resuming from a compacted resourceVersion did not raise 410")
    # the recovery: re-list, then watch from the list's resourceVersion
    rv = c.v1.list_namespaced_pod(c.ns).metadata.resource_version
    assert list(watch.Watch().stream(c.v1.list_namespaced_pod, c.ns, resource_version=rv,
                                     timeout_seconds=1)) == []


@check
def dynamic_client(c: Ctx) -> None:
    from kubernetes.dynamic import DynamicClient

    dc = DynamicClient(c.api)
    res = dc.resources.get(api_version="serving.kserve.io/v1beta1", kind="InferenceService")
    assert "isvc" in (res.short_names or [])
    items = res.get(namespace=c.ns).items
    assert [i.metadata.name for i in items] == ["iris"]
    res.patch(name="iris", namespace=c.ns, body={"metadata": {"labels": {"d": "1"}}},
              content_type="application/merge-patch+json")
    kpa = dc.resources.get(api_version="autoscaling.internal.knative.dev/v1alpha1",
                           kind="PodAutoscaler")
    assert kpa.namespaced and "kpa" in kpa.short_names
    pods = dc.resources.get(api_version="v1", kind="Pod")
    names = [e["object"].metadata.name for e in pods.watch(namespace=c.ns, timeout=1)]
    assert len(names) == 2, names


@check
def delete_finalizers_and_namespace(c: Ctx) -> None:
    cm = {"metadata": {"name": "guarded", "finalizers": ["harness/test"]}}
    c.v1.create_namespaced_config_map(c.ns, cm)
    c.v1.delete_namespaced_config_map("guarded", c.ns)
    got = c.v1.read_namespaced_config_map("guarded", c.ns)
    assert got.metadata.deletion_timestamp is not None
    c.v1.patch_namespaced_config_map("guarded", c.ns, {"metadata": {"finalizers": None}})
    expect_status(404, lambda: c.v1.read_namespaced_config_map("guarded", c.ns))
    c.v1.delete_namespace(c.ns)
    expect_status(404, lambda: c.v1.read_namespace(c.ns))
    expect_status(404, lambda: c.v1.read_namespaced_pod("db-0", c.ns))


def main(argv: list[str]) -> int:
    ctx = Ctx(argv[1])
    only = set(argv[2:])
    failed = 0
    print(f"kubernetes client {kubernetes.__version__} from {kubernetes.__file__}")
    for fn in CHECKS:
        if only and fn.__name__ not in only:
            continue
        t0 = time.monotonic()
        try:
            fn(ctx)
        except Exception:  # noqa: BLE001 - report every failing check
            failed += 1
            print(f"FAIL {fn.__name__}\n{traceback.format_exc()}")
        else:
            print(f"ok   {fn.__name__} ({time.monotonic() - t0:.2f} s)")
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv))
