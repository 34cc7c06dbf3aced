"""Under each injected fault, a client that re-lists on 410 ends with exactly the server's
objects (name -> resourceVersion): no event lost, none invented.

A writer changes configmaps in-process (creates, updates, deletes) while a reconciler,
using the official client over HTTP, lists once and then watches from the list's
resourceVersion, re-watching from its last resourceVersion when a stream ends, re-listing
on 410 and backing off on 429/500.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.emulator import Emulator, ServerSettings

WRITES = 240
DEADLINE_S = 40.0


class Reconciler:
    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        from kubernetes import client, config

        api = config.new_client_from_config(config_file=str(kubeconfig))
        api.configuration.proxy = None
        self.v1 = client.CoreV1Api(api)
        self.ns = namespace
        self.state: dict[str, str] = {}
        self.rv: str | None = None
        self.relists = 0
        self.backoffs = 0
        self.streams = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.error = exc

    def _run(self) -> None:
        from kubernetes import watch
        from kubernetes.client.rest import ApiException
        from urllib3.exceptions import HTTPError

        deadline = time.monotonic() + DEADLINE_S
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                if self.rv is None:
                    listed = self.v1.list_namespaced_config_map(self.ns)
                    self.state = {i.metadata.name: i.metadata.resource_version
                                  for i in listed.items}
                    self.rv = listed.metadata.resource_version
                    self.relists += 1
                self.streams += 1
                for ev in watch.Watch().stream(self.v1.list_namespaced_config_map, self.ns,
                                               resource_version=self.rv, timeout_seconds=1,
                                               allow_watch_bookmarks=True):
                    meta = ev["raw_object"]["metadata"]
                    if ev["type"] == "DELETED":
                        self.state.pop(meta["name"], None)
                    elif ev["type"] in ("ADDED", "MODIFIED"):
                        self.state[meta["name"]] = meta["resourceVersion"]
                    self.rv = meta["resourceVersion"]
                time.sleep(0.05)  # a pause between streams, so resumes replay history
            except ApiException as exc:
                if exc.status == 410:
                    self.rv = None
                elif exc.status in (429, 500):
                    self.backoffs += 1
                    after = (exc.headers or {}).get("Retry-After", "0.1")
                    time.sleep(min(0.5, float(after)))
                else:
                    raise
            except HTTPError:
                self.backoffs += 1
                time.sleep(0.05)


def _writer(emu: Emulator, ns: str, fault_tick: Callable[[], None] | None) -> None:
    rng = random.Random(7)
    live: list[str] = []
    for i in range(WRITES):
        roll = rng.random()
        if live and roll < 0.25:
            emu.store.delete("configmaps", live.pop(rng.randrange(len(live))), namespace=ns)
        elif live and roll < 0.6:
            name = rng.choice(live)
            emu.store.patch("configmaps", name, {"data": {"i": str(i)}}, namespace=ns)
        else:
            name = f"cm-{i}"
            emu.store.create("configmaps", {"metadata": {"name": name}, "data": {"i": "0"}},
                             namespace=ns)
            live.append(name)
        if fault_tick is not None and i % 40 == 20:
            fault_tick()
        time.sleep(0.01)


FAULTS: dict[str, dict[str, object]] = {
    "none": {},
    "drop-watches": {"tick": "drop"},
    "compact-410": {"tick": "compact"},
    "latency": {"set": {"latency_s": 0.03}},
    "throttle-429": {"set": {"throttle_share": 0.5, "retry_after_s": 1}},
    "error-500": {"set": {"error_share": 0.5}},
}


@pytest.mark.slow
@pytest.mark.parametrize("fault", list(FAULTS))
def test_relisting_client_converges_under_fault(fault: str, tmp_path: Path) -> None:
    spec = FAULTS[fault]
    with Emulator(settings=ServerSettings(bookmark_interval_s=0.3), seed=3) as emu:
        kubeconfig = emu.write_kubeconfig(tmp_path / "config")
        ns = "faults"
        emu.store.create("namespaces", {"metadata": {"name": ns}})
        emu.store.create("configmaps", {"metadata": {"name": "seed"}}, namespace=ns)
        rec = Reconciler(kubeconfig, ns)
        thread = threading.Thread(target=rec.run, daemon=True)
        thread.start()
        time.sleep(0.2)
        tick = None
        if spec.get("tick") == "drop":
            tick = emu.drop_watches
        elif spec.get("tick") == "compact":
            def tick() -> None:
                emu.compact()
        emu.faults.set(**spec.get("set", {}))  # type: ignore[arg-type]
        _writer(emu, ns, tick)
        emu.faults.clear()
        want = {i["metadata"]["name"]: i["metadata"]["resourceVersion"]
                for i in emu.store.list("configmaps", namespace=ns)["items"]}
        deadline = time.monotonic() + 15
        while rec.state != want and time.monotonic() < deadline and rec.error is None:
            time.sleep(0.1)
        rec.stop.set()
        thread.join(10)
        assert rec.error is None, repr(rec.error)
        assert rec.state == want, (
            f"missing {sorted(set(want) - set(rec.state))[:5]}, extra "
            f"{sorted(set(rec.state) - set(want))[:5]}, stale "
            f"{[k for k in want if k in rec.state and rec.state[k] != want[k]][:5]}")
        if fault == "compact-410":
            assert rec.relists >= 2, "the compaction never forced a re-list"
        if fault == "throttle-429":  # urllib3 itself retries a 429 after its Retry-After
            assert emu.faults.injected[429] >= 1, emu.faults.injected
        if fault == "error-500":
            assert emu.faults.injected[500] >= 1, emu.faults.injected
            assert rec.backoffs >= 1, (rec.streams, rec.relists, emu.faults.injected)
        if fault == "drop-watches":
            assert rec.streams >= 4
