"""The kubelet runs a pod as a real model-server process: conditions in order with
their transition times, the port published, readiness from the health endpoint; a
deletion drains an in-flight request (SIGTERM), then removes the pod; the start-up
delay fault makes the pod ready that much later."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.emulator.api.store import Store
from harness.emulator.controllers.kubelet import PORT_ANNOTATION, Kubelet

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


def _pod(name: str, env: dict[str, str] | None = None, grace: int = 10) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"nodeName": "cpu-1", "terminationGracePeriodSeconds": grace,
                     "containers": [{"name": "kserve-container", "image": "x", "env": [
                         {"name": k, "value": v} for k, v in (env or {}).items()]}]}}


def _conds(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (pod.get("status") or {}).get("conditions") or []}


async def _until(pred: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_pod_runs_serves_and_drains_on_delete(tmp_path: Path) -> None:
    store = Store(graceful_pods=True)
    kubelet = Kubelet(store, workdir=tmp_path)

    async def scenario() -> None:
        await kubelet.start()
        try:
            store.create("pods", _pod("p1", {"REQUEST_LATENCY": "1s"}), namespace="default")

            def ready() -> bool:
                return _conds(store.get("pods", "p1", namespace="default")).get(
                    "Ready", {}).get("status") == "True"

            await _until(ready, 20)
            pod = store.get("pods", "p1", namespace="default")
            conds = _conds(pod)
            assert [c["type"] for c in pod["status"]["conditions"]] == [
                "Initialized", "ContainersReady", "Ready"]
            assert all(c["status"] == "True" and c["lastTransitionTime"]
                       for c in conds.values())
            assert pod["status"]["phase"] == "Running"
            assert pod["status"]["podIP"] == "127.0.0.1"
            port = int(pod["metadata"]["annotations"][PORT_ANNOTATION])
            (rt,) = kubelet.pods.values()
            pid = rt.proc.pid if rt.proc else 0
            async with httpx.AsyncClient(timeout=10) as c:
                inflight = asyncio.create_task(c.post(
                    f"http://127.0.0.1:{port}/v1/models/linear:predict",
                    json={"instances": [[1, 2, 3, 4]]}))
                await asyncio.sleep(0.3)
                t0 = time.monotonic()
                store.delete("pods", "p1", namespace="default")
                assert store.get("pods", "p1", namespace="default")["metadata"][
                    "deletionTimestamp"]
                r = await inflight
                assert r.status_code == 200 and r.headers["x-pod-name"] == "p1"
            await _until(lambda: store.try_get("pods", "p1", namespace="default") is None, 15)
            assert time.monotonic() - t0 < 10  # the process exited before the grace period
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
            assert not kubelet.pods
        finally:
            await kubelet.stop()

    asyncio.run(scenario())


def test_startup_delay_fault_and_stop_kills_everything(tmp_path: Path) -> None:
    store = Store(graceful_pods=True)
    kubelet = Kubelet(store, workdir=tmp_path, startup_delay_s=1.5)

    async def scenario() -> list[int]:
        await kubelet.start()
        try:
            t0 = time.monotonic()
            store.create("pods", _pod("slow"), namespace="default")
            await _until(lambda: _conds(store.get("pods", "slow", namespace="default")).get(
                "Ready", {}).get("status") == "True", 20)
            assert time.monotonic() - t0 >= 1.5
            return kubelet.pids()
        finally:
            await kubelet.stop()

    pids = asyncio.run(scenario())
    assert pids
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_crashed_container_is_restarted(tmp_path: Path) -> None:
    store = Store(graceful_pods=True)
    kubelet = Kubelet(store, workdir=tmp_path)

    async def scenario() -> None:
        await kubelet.start()
        try:
            store.create("pods", _pod("crashy"), namespace="default")

            def ready() -> bool:
                return _conds(store.get("pods", "crashy", namespace="default")).get(
                    "Ready", {}).get("status") == "True"

            await _until(ready, 20)
            (rt,) = kubelet.pods.values()
            first = rt.proc.pid if rt.proc else 0
            os.killpg(first, 9)
            await _until(lambda: not ready(), 10)
            await _until(ready, 20)
            pod = store.get("pods", "crashy", namespace="default")
            assert pod["status"]["containerStatuses"][0]["restartCount"] == 1
            assert rt.proc is not None and rt.proc.pid != first
            events = [e["reason"] for e in store.list("events", namespace="default")["items"]]
            assert "BackOff" in events
        finally:
            await kubelet.stop()

    asyncio.run(scenario())


def test_the_container_runs_from_its_process_start_not_from_its_port(tmp_path: Path) -> None:
    """As a kubelet reports it: ``state.running`` (phase Running) as soon as the process
    exists, before the server listens (its port published) and before Ready; on real
    Knative the model server's start-up shows as the gap between running and Ready."""
    store = Store(graceful_pods=True)
    kubelet = Kubelet(store, workdir=tmp_path)
    seen: list[tuple[bool, bool, bool]] = []

    async def scenario() -> None:
        await kubelet.start()
        try:
            store.create("pods", _pod("p1"), namespace="default")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                pod = store.get("pods", "p1", namespace="default")
                statuses = (pod.get("status") or {}).get("containerStatuses") or []
                running = bool(statuses) and "running" in statuses[0]["state"]
                port = PORT_ANNOTATION in (pod["metadata"].get("annotations") or {})
                ready = _conds(pod).get("Ready", {}).get("status") == "True"
                if not seen or seen[-1] != (running, port, ready):
                    seen.append((running, port, ready))
                if ready:
                    break
                await asyncio.sleep(0.005)
        finally:
            await kubelet.stop()

    asyncio.run(scenario())
    assert seen[-1] == (True, True, True)
    assert (True, False, False) in seen      # running, not yet listening
