"""The in-process API that controllers use: CRUD, watch semantics, deletion rules."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from harness.emulator import ApiError, Store


def cm(name: str, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, **meta}, "data": {"k": "v"}}


@pytest.fixture
def store() -> Store:
    s = Store(seed=1, history=50)
    s.create("namespaces", {"metadata": {"name": "ns"}})
    return s


def test_resource_versions_are_global_and_monotonic(store: Store) -> None:
    a = store.create("configmaps", cm("a"), namespace="ns")
    b = store.create("pods", {"metadata": {"name": "p"}, "spec": {"containers": []}},
                     namespace="ns")
    assert int(b["metadata"]["resourceVersion"]) == int(a["metadata"]["resourceVersion"]) + 1
    assert store.list("configmaps")["metadata"]["resourceVersion"] == str(
        store.resource_version)


def test_errors_carry_status_codes(store: Store) -> None:
    store.create("configmaps", cm("a"), namespace="ns")
    cases = [
        (lambda: store.create("configmaps", cm("a"), namespace="ns"), 409, "AlreadyExists"),
        (lambda: store.get("configmaps", "b", namespace="ns"), 404, "NotFound"),
        (lambda: store.update("configmaps", cm("a", resourceVersion="1"), namespace="ns"),
         409, "Conflict"),
        (lambda: store.create("configmaps", cm("x"), namespace="gone"), 404, "NotFound"),
        (lambda: store.create("configmaps", {"metadata": {}}, namespace="ns"), 422,
         "Invalid"),
        (lambda: store.create("configmaps", cm("x", labels={"a": 1}), namespace="ns"), 400,
         "BadRequest"),
        (lambda: store.list("pods", label_selector="a in b"), 400, "BadRequest"),
        (lambda: store.patch("serving.kserve.io/inferenceservices", "a", {},
                             namespace="ns", patch_type="strategic"), 415,
         "UnsupportedMediaType"),
        (lambda: store.watch("configmaps", resource_version="-1"), 400, "BadRequest"),
    ]
    for call, code, reason in cases:
        with pytest.raises(ApiError) as info:
            call()
        assert (info.value.code, info.value.reason) == (code, reason), info.value.message


def test_update_bumps_generation_only_on_spec_changes(store: Store) -> None:
    obj = store.create("apps/deployments", {"metadata": {"name": "d"}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"a": "b"}}}}, namespace="ns")
    assert obj["metadata"]["generation"] == 1
    obj = store.patch("apps/deployments", "d", {"metadata": {"labels": {"x": "y"}}},
                      namespace="ns")
    assert obj["metadata"]["generation"] == 1
    obj = store.patch("apps/deployments", "d", {"status": {"replicas": 1}}, namespace="ns",
                      subresource="status")
    assert obj["metadata"]["generation"] == 1 and obj["status"]["replicas"] == 1
    obj = store.update_scale("apps/deployments", "d", {"spec": {"replicas": 3}},
                             namespace="ns")
    assert obj["spec"]["replicas"] == 3 and obj["status"]["selector"] == "a=b"
    assert store.get("apps/deployments", "d", namespace="ns")["metadata"]["generation"] == 2


def test_watch_resume_replays_and_410_after_compaction(store: Store) -> None:
    rv = store.create("configmaps", cm("a"), namespace="ns")["metadata"]["resourceVersion"]
    store.patch("configmaps", "a", {"data": {"k": "w"}}, namespace="ns")
    store.delete("configmaps", "a", namespace="ns")
    w = store.watch("configmaps", namespace="ns", resource_version=rv)
    assert [e.type for e in (w.get(0), w.get(0))] == ["MODIFIED", "DELETED"]
    assert w.get(0) is None
    w.stop()
    store.compact()
    with pytest.raises(ApiError) as info:
        store.watch("configmaps", resource_version=rv)
    assert info.value.code == 410 and "too old resource version" in info.value.message
    fresh = store.list("configmaps")["metadata"]["resourceVersion"]
    store.watch("configmaps", resource_version=fresh).stop()


def test_history_window_is_bounded(store: Store) -> None:
    first = store.create("configmaps", cm("c0"), namespace="ns")["metadata"]["resourceVersion"]
    for i in range(1, 60):
        store.create("configmaps", cm(f"c{i}"), namespace="ns")
    with pytest.raises(ApiError) as info:
        store.watch("configmaps", resource_version=first)
    assert info.value.code == 410


def test_initial_events_are_in_key_order_then_live(store: Store) -> None:
    for name in ("b", "a"):
        store.create("configmaps", cm(name), namespace="ns")
    w = store.watch("configmaps", namespace="ns")
    store.create("configmaps", cm("c"), namespace="ns")
    got = [(e.type, e.object["metadata"]["name"]) for e in (w.get(0), w.get(0), w.get(0))]
    assert got == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]
    w.stop()


def test_async_consumers_get_events(store: Store) -> None:
    async def main() -> list[str]:
        w = store.watch("configmaps", namespace="ns", resource_version=str(
            store.resource_version))
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, lambda: store.create("configmaps", cm("late"), namespace="ns"))
        ev = await w.next(timeout=2)
        w.stop()
        assert ev is not None
        return [ev.type, ev.object["metadata"]["name"]]

    assert asyncio.run(main()) == ["ADDED", "late"]


def test_finalizers_hold_deletion_until_removed(store: Store) -> None:
    store.create("configmaps", cm("f", finalizers=["x/y"]), namespace="ns")
    held = store.delete("configmaps", "f", namespace="ns")
    assert held["metadata"]["deletionTimestamp"]
    with pytest.raises(ApiError):
        store.patch("configmaps", "f", {"metadata": {"finalizers": ["x/y", "new"]}},
                    namespace="ns")
    store.patch("configmaps", "f", {"metadata": {"finalizers": None}}, namespace="ns")
    assert store.try_get("configmaps", "f", namespace="ns") is None


def test_garbage_collection_follows_owner_references(store: Store) -> None:
    owner = store.create("apps/deployments", {"metadata": {"name": "o"}, "spec": {}},
                         namespace="ns")
    ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "o",
           "uid": owner["metadata"]["uid"]}
    store.create("pods", {"metadata": {"name": "child", "ownerReferences": [ref]},
                          "spec": {"containers": []}}, namespace="ns")
    store.create("pods", {"metadata": {"name": "orphan", "ownerReferences": [ref]},
                          "spec": {"containers": []}}, namespace="ns")
    store.delete("apps/deployments", "o", namespace="ns", propagation_policy="Orphan")
    assert "ownerReferences" not in store.get("pods", "orphan", namespace="ns")["metadata"]
    owner = store.create("apps/deployments", {"metadata": {"name": "o2"}, "spec": {}},
                         namespace="ns")
    store.patch("pods", "child", {"metadata": {"ownerReferences": [
        {**ref, "name": "o2", "uid": owner["metadata"]["uid"]}]}}, namespace="ns")
    store.delete("apps/deployments", "o2", namespace="ns")
    assert store.try_get("pods", "child", namespace="ns") is None


def test_namespace_deletion_removes_contents(store: Store) -> None:
    store.create("configmaps", cm("a"), namespace="ns")
    store.create("configmaps", cm("held", finalizers=["x/y"]), namespace="ns")
    w = store.watch("namespaces", field_selector="metadata.name=ns")
    ns = store.delete("namespaces", "ns")
    assert ns["status"]["phase"] == "Terminating"
    with pytest.raises(ApiError) as info:
        store.create("configmaps", cm("new"), namespace="ns")
    assert info.value.code == 403
    assert store.count("configmaps", "ns") == 1
    store.patch("configmaps", "held", {"metadata": {"finalizers": []}}, namespace="ns")
    assert store.try_get("namespaces", "ns") is None
    types = []
    while (ev := w.get(0)) is not None:
        types.append(ev.type)
    assert types == ["ADDED", "MODIFIED", "DELETED"]


def test_graceful_pods_wait_for_their_kubelet() -> None:
    store = Store(graceful_pods=True)
    store.create("pods", {"metadata": {"name": "p"}, "spec": {"nodeName": "n1",
                                                              "containers": []}},
                 namespace="default")
    pod = store.delete("pods", "p", namespace="default")
    assert pod["metadata"]["deletionGracePeriodSeconds"] == 30
    assert store.try_get("pods", "p", namespace="default") is not None
    store.delete("pods", "p", namespace="default", grace_period_seconds=0)
    assert store.try_get("pods", "p", namespace="default") is None


def test_selectors_turn_modifications_into_added_and_deleted(store: Store) -> None:
    store.create("configmaps", cm("a", labels={"app": "x"}), namespace="ns")
    w = store.watch("configmaps", label_selector="app=x",
                    resource_version=str(store.resource_version))
    store.patch("configmaps", "a", {"metadata": {"labels": {"app": "y"}}}, namespace="ns")
    store.patch("configmaps", "a", {"metadata": {"labels": {"app": "x"}}}, namespace="ns")
    assert [w.get(0).type, w.get(0).type] == ["DELETED", "ADDED"]  # type: ignore[union-attr]


def test_list_pages_with_limit_and_continue(store: Store) -> None:
    for i in range(5):
        store.create("configmaps", cm(f"c{i}"), namespace="ns")
    first = store.list("configmaps", namespace="ns", limit=2)
    assert len(first["items"]) == 2 and first["metadata"]["remainingItemCount"] == 3
    names = [i["metadata"]["name"] for i in first["items"]]
    token = first["metadata"]["continue"]
    while token:
        page = store.list("configmaps", namespace="ns", limit=2, continue_token=token)
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
    assert names == [f"c{i}" for i in range(5)]


def test_quantities_are_normalised_to_strings(store: Store) -> None:
    pod = store.create("pods", {"metadata": {"name": "q"}, "spec": {"containers": [
        {"name": "c", "resources": {"requests": {"cpu": 2, "nvidia.com/gpu": 1},
                                    "limits": {"memory": 0.5}}}]}}, namespace="ns")
    res = pod["spec"]["containers"][0]["resources"]
    assert res == {"requests": {"cpu": "2", "nvidia.com/gpu": "1"},
                   "limits": {"memory": "0.5"}}


def test_objects_handed_out_are_private_copies(store: Store) -> None:
    obj = store.create("configmaps", cm("a"), namespace="ns")
    obj["data"]["k"] = "changed"
    assert store.get("configmaps", "a", namespace="ns")["data"]["k"] == "v"


def test_serverlessservice_crd_has_upstreams_printer_columns() -> None:
    """The hook for server-side Table printing: the SKS CRD declares Knative's
    ``additionalPrinterColumns`` (Mode, Activators, ServiceName, PrivateServiceName, Ready,
    Reason), and ReplicaSets are served under apps/v1 with short name rs."""
    store = Store()
    crd = store.get("apiextensions.k8s.io/customresourcedefinitions",
                    "serverlessservices.networking.internal.knative.dev")
    (version,) = crd["spec"]["versions"]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Mode", "Activators", "ServiceName", "PrivateServiceName", "Ready", "Reason"]
    assert crd["spec"]["names"]["shortNames"] == ["sks"]
    assert store.resource("apps/replicasets").short_names == ("rs",)
