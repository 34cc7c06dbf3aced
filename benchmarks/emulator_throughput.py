"""List and watch throughput of the emulated API server, in objects per second.

Starts an in-process emulator on 127.0.0.1, creates N pods through the store, then times,
with the official client (the venv's version) over HTTP:
- a typed list (``CoreV1Api.list_namespaced_pod``) and a raw list (no model decoding);
- a typed watch that replays N pod events from a resourceVersion, and the same raw.
Also times in-process creates (the store alone).

    .venv/bin/python benchmarks/emulator_throughput.py [--pods 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from harness.emulator import Emulator


def pod(i: int) -> dict[str, object]:
    return {"metadata": {"name": f"p-{i:06d}", "labels": {"app": "bench", "i": str(i % 10)}},
            "spec": {"containers": [{"name": "c", "image": "model:1",
                                     "resources": {"requests": {"cpu": "100m"}}}]}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=10_000)
    args = parser.parse_args()
    n = args.pods
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    from kubernetes import client, config, watch

    rows: list[tuple[str, int, float]] = []
    with Emulator(history=n + 100) as emu, tempfile.TemporaryDirectory() as tmp:
        kc = emu.write_kubeconfig(Path(tmp) / "config")
        api = config.new_client_from_config(config_file=str(kc))
        api.configuration.proxy = None
        v1 = client.CoreV1Api(api)
        emu.store.create("namespaces", {"metadata": {"name": "bench"}})
        start_rv = emu.store.list("pods", namespace="bench")["metadata"]["resourceVersion"]

        t0 = time.perf_counter()
        for i in range(n):
            emu.store.create("pods", pod(i), namespace="bench")
        rows.append(("store create (in-process)", n, time.perf_counter() - t0))

        t0 = time.perf_counter()
        raw = v1.list_namespaced_pod("bench", _preload_content=False)
        count = len(json.loads(raw.data)["items"])
        rows.append(("list, raw JSON (HTTP)", count, time.perf_counter() - t0))

        t0 = time.perf_counter()
        count = len(v1.list_namespaced_pod("bench").items)
        rows.append(("list, typed models (HTTP)", count, time.perf_counter() - t0))

        for label, kwargs in (("watch replay, raw events (HTTP)", {"_preload_content": False}),
                              ("watch replay, typed events (HTTP)", {})):
            t0 = time.perf_counter()
            count = 0
            if kwargs:
                resp = v1.list_namespaced_pod("bench", watch=True, resource_version=start_rv,
                                              timeout_seconds=120, _preload_content=False)
                buf = b""
                for chunk in resp.stream(65536):
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    count += sum(1 for line in lines if line)
                    if count >= n:
                        break
                resp.release_conn()
            else:
                for _ev in watch.Watch().stream(v1.list_namespaced_pod, "bench",
                                                resource_version=start_rv,
                                                timeout_seconds=120):
                    count += 1
                    if count >= n:
                        break
            rows.append((label, count, time.perf_counter() - t0))

    import kubernetes

    print(f"emulator throughput, kubernetes client {kubernetes.__version__}, {n} pods")
    print(f"{'operation':36} {'objects':>8} {'seconds':>8} {'objects/s':>10}")
    for label, count, secs in rows:
        print(f"{label:36} {count:8d} {secs:8.3f} {count / secs:10.0f}")
    return 0 if all(c == n for _, c, _ in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
