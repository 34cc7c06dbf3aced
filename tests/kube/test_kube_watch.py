"""The resuming watch sees every change: through dropped watch streams (resume, nothing
lost, nothing twice), through compaction (410: re-list, synthetic events for what changed,
final state exact), and through API-server restarts that keep their state (in-process
server restarted on the same port over the same store) or lose it (child process
restarted on the same port: everything before is gone, shown as synthetic DELETEDs)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from harness.emulator import ChildEmulator, Emulator, ServerSettings
from harness.kube.client import Kube, RetryPolicy, load_api_client
from harness.kube.watch import collect

FAST_RETRY = RetryPolicy(attempts=6, base_s=0.01, max_backoff_s=0.2, deadline_s=10.0)


def wait_until(pred: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def cm(name: str, value: str = "0") -> dict[str, Any]:
    return {"metadata": {"name": name}, "data": {"v": value}}


def writer(emulator: Emulator, ns: str, n: int, fault: Any, every: int = 5,
           before_deletes: Any = None) -> tuple[set[tuple[str, str, str]], set[str]]:
    """Create n configmaps, modify each twice, delete every third; run ``fault()`` every
    ``every`` writes. Returns (type, name, rv) of every add/modify, and deleted names."""
    store = emulator.store
    writes: set[tuple[str, str, str]] = set()
    deleted: set[str] = set()
    count = 0

    def tick() -> None:
        nonlocal count
        count += 1
        if count % every == 0:
            fault()
        time.sleep(0.002)

    for i in range(n):
        obj = store.create("configmaps", cm(f"c{i}"), namespace=ns)
        writes.add(("ADDED", obj["metadata"]["name"], obj["metadata"]["resourceVersion"]))
        tick()
    for rnd in (1, 2):
        for i in range(n):
            obj = store.patch("configmaps", f"c{i}", {"data": {"v": str(rnd)}}, namespace=ns)
            writes.add(("MODIFIED", obj["metadata"]["name"],
                        obj["metadata"]["resourceVersion"]))
            tick()
    if before_deletes is not None:
        before_deletes()
    for i in range(0, n, 3):
        store.delete("configmaps", f"c{i}", namespace=ns)
        deleted.add(f"c{i}")
        tick()
    return writes, deleted


def final_state(emulator: Emulator, ns: str) -> dict[str, str]:
    items = emulator.store.list("configmaps", namespace=ns)["items"]
    return {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in items}


def snapshot_state(w: Any) -> dict[str, str]:
    return {k[1]: o["metadata"]["resourceVersion"] for k, o in w.snapshot().items()}


def test_dropped_watches_resume_and_lose_nothing(kube: Kube, emulator: Emulator,
                                                 namespace: str) -> None:
    w, events = collect(kube, "configmaps", namespace)
    try:
        assert w.synced.wait(5)
        writes, deleted = writer(emulator, namespace, 30, emulator.drop_watches)
        want = final_state(emulator, namespace)
        wait_until(lambda: snapshot_state(w) == want and
                   {e["object"]["metadata"]["name"] for e in events
                    if e["type"] == "DELETED"} == deleted, what="the watch to catch up")
    finally:
        w.stop()
    seen = [(e["type"], e["object"]["metadata"]["name"],
             e["object"]["metadata"]["resourceVersion"]) for e in events
            if e["type"] != "DELETED"]
    assert w.stats["resumes"] >= 5 and w.stats["gone"] == 0
    assert not any(e["synthetic"] for e in events)
    assert set(seen) == writes  # every change seen ...
    assert len(seen) == len(writes)  # ... exactly once
    assert Counter(e["object"]["metadata"]["name"] for e in events
                   if e["type"] == "DELETED") == Counter(deleted)


def test_compaction_relists_and_recovers_every_object(kube: Kube, emulator: Emulator,
                                                      namespace: str) -> None:
    w, events = collect(kube, "configmaps", namespace)
    try:
        assert w.synced.wait(5)
        # an object created and deleted inside one compaction gap is invisible to any
        # client (Kubernetes semantics), so let the watch see all 30 before the deletes
        _, deleted = writer(emulator, namespace, 30, emulator.compact, every=7,
                            before_deletes=lambda: wait_until(lambda: len(w.snapshot()) == 30))
        want = final_state(emulator, namespace)
        wait_until(lambda: snapshot_state(w) == want, what="the watch to catch up")
    finally:
        w.stop()
    assert w.stats["gone"] >= 1 and w.stats["lists"] >= 2
    created = {e["object"]["metadata"]["name"] for e in events if e["type"] == "ADDED"}
    gone = [e["object"]["metadata"]["name"] for e in events if e["type"] == "DELETED"]
    assert created == {f"c{i}" for i in range(30)}
    assert Counter(gone) == Counter(deleted)  # every delete seen once, real or synthetic
    for e in events:
        assert isinstance(e["received"], float) and e["kind"] == "ConfigMap"
        assert e["object"]["kind"] == "ConfigMap"
    # the final version of every surviving object was delivered
    last: dict[str, str] = {}
    for e in events:
        if e["type"] != "DELETED":
            last[e["object"]["metadata"]["name"]] = e["object"]["metadata"]["resourceVersion"]
    assert {k: v for k, v in last.items() if k in want} == want


def test_watch_survives_a_restart_that_keeps_state(tmp_path: Path) -> None:
    """In-process API server stopped and started again on the same port over the same
    store (state kept, as etcd keeps it): changes made while it was down arrive."""
    first = Emulator(settings=ServerSettings(bookmark_interval_s=0.5)).start()
    store, port = first.store, first.port
    store.create("namespaces", {"metadata": {"name": "hx-keep"}})
    store.create("configmaps", cm("before"), namespace="hx-keep")
    api, ctx = load_api_client(first.write_kubeconfig(tmp_path / "kc"))
    kube = Kube(api, context=ctx, retry=FAST_RETRY)
    w, events = collect(kube, "configmaps", "hx-keep", max_backoff_s=0.3)
    second = None
    try:
        assert w.synced.wait(5)
        first.stop()
        store.create("configmaps", cm("while-down"), namespace="hx-keep")
        store.delete("configmaps", "before", namespace="hx-keep")
        time.sleep(0.3)
        second = Emulator(store=store, port=port,
                          settings=ServerSettings(bookmark_interval_s=0.5)).start()
        store.create("configmaps", cm("after"), namespace="hx-keep")
        wait_until(lambda: set(n for _, n in w.snapshot()) == {"while-down", "after"},
                   what="changes across the restart")
    finally:
        w.stop()
        kube.close()
        if second is not None:
            second.stop()
        first.stop()
    names = [(e["type"], e["object"]["metadata"]["name"]) for e in events]
    assert names[0] == ("ADDED", "before")
    assert {("ADDED", "while-down"), ("DELETED", "before"), ("ADDED", "after")} <= set(names)
    assert len(names) == 4 and w.stats["errors"] >= 1


@pytest.mark.slow
def test_watch_survives_a_restart_that_loses_state(tmp_path: Path) -> None:
    """Child-process API server killed and started again on the same port with a fresh,
    empty store (state lost, resourceVersions start over): the watch re-lists and
    reports the old objects as synthetic DELETEDs and the new ones as ADDED."""
    child = ChildEmulator(tmp_path / "one").start()
    port = child.port
    api, ctx = load_api_client(child.kubeconfig)
    kube = Kube(api, context=ctx, retry=FAST_RETRY)
    for body in ({"metadata": {"name": "hx-lost"}},):
        kube.request("POST", "/api/v1/namespaces", body=body)
    for name in ("a", "b"):
        kube.request("POST", "/api/v1/namespaces/hx-lost/configmaps", body=cm(name))
    w, events = collect(kube, "configmaps", "hx-lost", max_backoff_s=0.3)
    again = None
    try:
        assert w.synced.wait(5)
        child.stop()
        again = ChildEmulator(tmp_path / "two", extra_args=["--port", str(port)]).start()
        assert again.port == port
        kube.request("POST", "/api/v1/namespaces", body={"metadata": {"name": "hx-lost"}})
        kube.request("POST", "/api/v1/namespaces/hx-lost/configmaps", body=cm("c"))
        wait_until(lambda: set(n for _, n in w.snapshot()) == {"c"}, timeout=15,
                   what="the watch to see the new server's state")
    finally:
        w.stop()
        kube.close()
        if again is not None:
            again.stop()
        child.stop()
    by = {(e["type"], e["object"]["metadata"]["name"]): e for e in events}
    assert set(by) == {("ADDED", "a"), ("ADDED", "b"), ("DELETED", "a"), ("DELETED", "b"),
                       ("ADDED", "c")}
    assert by[("DELETED", "a")]["synthetic"] and by[("DELETED", "b")]["synthetic"]
    assert not by[("ADDED", "a")]["synthetic"]


def test_stop_returns_promptly_while_a_stream_is_open(kube: Kube, namespace: str) -> None:
    w, _ = collect(kube, "configmaps", namespace, timeout_s=300)
    assert w.synced.wait(5)
    time.sleep(0.2)
    t0 = time.monotonic()
    w.stop()
    assert time.monotonic() - t0 < 1.0
    assert w._thread is not None and not w._thread.is_alive()


def test_stop_returns_promptly_while_the_server_is_down(tmp_path: Path) -> None:
    emu = Emulator().start()
    api, ctx = load_api_client(emu.write_kubeconfig(tmp_path / "kc"))
    kube = Kube(api, context=ctx)  # default policy: 60 s of retries per request
    w, _ = collect(kube, "configmaps", "default")
    assert w.synced.wait(5)
    emu.stop()
    time.sleep(0.5)  # the watch is now failing to reconnect
    t0 = time.monotonic()
    w.stop()
    kube.close()
    assert time.monotonic() - t0 < 1.0 and w.stats["errors"] >= 1
    assert w._thread is not None and not w._thread.is_alive()


def test_throttled_and_failing_watch_requests_lose_nothing(kube: Kube, emulator: Emulator,
                                                           namespace: str) -> None:
    """429s and 500s on every kind of request (lists and watches) while streams keep
    being dropped: every change is still delivered, exactly once."""
    w, events = collect(kube, "configmaps", namespace, max_backoff_s=0.05)
    try:
        assert w.synced.wait(5)
        emulator.faults.set(throttle_share=0.3, error_share=0.2, retry_after_s=0)
        before = dict(emulator.faults.injected)
        writes, deleted = writer(emulator, namespace, 20, emulator.drop_watches, every=4)

        def both_faults_met() -> bool:
            # how many requests the drops cause depends on timing: keep dropping the
            # stream (bounded) until the watch has met a 429 and a 500 at least once
            now = emulator.faults.injected
            if now[429] > before[429] and now[500] > before[500]:
                return True
            emulator.drop_watches()
            return False

        wait_until(both_faults_met, what="a 429 and a 500 on the watch's requests")
        want = final_state(emulator, namespace)
        wait_until(lambda: snapshot_state(w) == want and
                   {e["object"]["metadata"]["name"] for e in events
                    if e["type"] == "DELETED"} == deleted, what="the watch to catch up")
        injected = {k: emulator.faults.injected[k] - before[k] for k in before}
    finally:
        emulator.faults.clear()
        w.stop()
    assert injected[429] > 0 and injected[500] > 0 and w.stats["errors"] > 0
    seen = [(e["type"], e["object"]["metadata"]["name"],
             e["object"]["metadata"]["resourceVersion"]) for e in events
            if e["type"] != "DELETED"]
    assert set(seen) == writes and len(seen) == len(writes)
    assert not any(e["synthetic"] for e in events)
