"""Watch at volume: 10,000 pod events reach the official client (v37) in order, and an
in-process watcher sees the same stream."""

from __future__ import annotations

import time

import pytest

from harness.emulator import Emulator

N = 10_000


def _pod(i: int) -> dict[str, object]:
    return {"metadata": {"name": f"p-{i:05d}", "labels": {"app": "bulk"}},
            "spec": {"containers": [{"name": "c", "image": "m:1"}]}}


@pytest.mark.slow
def test_watch_of_10000_pod_events_completes(emulator: Emulator, api_client: object,
                                             namespace: str) -> None:
    from kubernetes import client, watch

    v1 = client.CoreV1Api(api_client)
    rv = v1.list_namespaced_pod(namespace).metadata.resource_version
    inproc = emulator.store.watch("pods", namespace=namespace, resource_version=rv)
    for i in range(N):
        emulator.store.create("pods", _pod(i), namespace=namespace)
    t0 = time.monotonic()
    names: list[str] = []
    for ev in watch.Watch().stream(v1.list_namespaced_pod, namespace, resource_version=rv,
                                   timeout_seconds=120):
        assert ev["type"] == "ADDED"
        names.append(ev["object"].metadata.name)
        if len(names) == N:
            break
    took = time.monotonic() - t0
    assert names == [f"p-{i:05d}" for i in range(N)]
    assert took < 60, f"{N} events took {took:.1f} s"
    got = [inproc.get(timeout=1) for _ in range(N)]
    inproc.stop()
    assert [e.object["metadata"]["name"] for e in got if e] == names
    rvs = [int(e.object["metadata"]["resourceVersion"]) for e in got if e]
    assert rvs == sorted(rvs) and len(set(rvs)) == N
    emulator.store.delete("namespaces", namespace)
    assert emulator.store.count("pods", namespace) == 0
