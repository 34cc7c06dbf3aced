"""Benchmark: an ingress's added latency and throughput against a direct call.

Starts one model-server process on 127.0.0.1 and the ingress in a second process in front
of it, then, from this process, measures both paths in the same run with a bounded number
of V1 predict requests. ``--ingress emulator`` (default): the emulated cluster's
(harness.emulator.dataplane.ingress); ``--ingress knative``: the upstream cluster's Knative
Ingress proxy (harness.upstream.ingress.proxy) with one Ingress whose "Service" is the
model server's address (in the cluster the hop goes to a ClusterIP, through kube-proxy).

* latency: one request at a time, direct and via the ingress in alternating blocks;
  p50 and p99 of each, and the ingress's added latency (difference of the percentiles);
* throughput: ``--concurrency`` closed-loop clients, a fixed number of requests each way.

Target (issue 4): the ingress adds under 2 ms at p50 and keeps at least half the direct
throughput. Exits 1 with ``--strict`` when a target is missed. Every process started
here is stopped in ``finally``.

    .venv/bin/python benchmarks/ingress_latency.py [--requests 2000] [--concurrency 16]
        [--ingress emulator|knative]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import select
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures" / "modelserver"))
sys.path.insert(0, str(ROOT))

from modelserver.local import LocalModelServer  # noqa: E402

HOST = "bench-predictor.bench.example.com"
PATH = "/v1/models/linear:predict"
PAYLOAD = b'{"instances": [[1.0, 2.0, 3.0, 4.0]]}'


# ---- the ingress child process --------------------------------------------------------


async def serve_knative_ingress(pod_port: int) -> None:
    from harness.upstream.ingress.proxy import IngressProxy
    from harness.upstream.ingress.routes import build_tables

    proxy = await IngressProxy({"public": [("127.0.0.1", 0)], "private": []}).start()
    try:
        ing = {"metadata": {"name": "bench", "namespace": "bench"}, "spec": {"rules": [
            {"hosts": [HOST], "visibility": "ExternalIP", "http": {"paths": [{"splits": [
                {"serviceName": "bench", "serviceNamespace": "bench", "servicePort": 80,
                 "percent": 100,
                 "appendHeaders": {"Knative-Serving-Revision": "bench-00001"}}]}]}}]}}
        svc = {"metadata": {"name": "bench", "namespace": "bench"},
               "spec": {"clusterIP": "127.0.0.1", "ports": [{"port": pod_port}]}}
        ing["spec"]["rules"][0]["http"]["paths"][0]["splits"][0]["servicePort"] = pod_port
        proxy.set_tables(build_tables([ing], {("bench", "bench"): svc}))
        print(f"ingress listening on http://127.0.0.1:{proxy.ports['public'][0]}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_reader(sys.stdin.fileno(), stop.set)  # parent gone -> stdin EOF
        await asyncio.wait_for(stop.wait(), timeout=3600)
    finally:
        await proxy.stop()


async def serve_ingress(pod_port: int, cc: int) -> None:
    from harness.emulator.dataplane.ingress import Ingress

    ingress = Ingress()
    await ingress.start()
    try:
        ingress.set_route(HOST, "bench", "bench-00001")
        ingress.set_endpoints("bench", "bench-00001", [("bench-pod", "127.0.0.1", pod_port)], cc)
        print(f"ingress listening on {ingress.url}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_reader(sys.stdin.fileno(), stop.set)  # parent gone -> stdin EOF
        await asyncio.wait_for(stop.wait(), timeout=3600)
    finally:
        await ingress.stop()


def start_ingress(pod_port: int, cc: int,
                  kind: str = "emulator") -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-ingress", str(pod_port), "--cc", str(cc),
         "--ingress", kind],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline().decode()
            if line.startswith("ingress listening on "):
                return proc, line.split()[-1]
            if not line:
                break
    stop_process(proc)
    raise RuntimeError("ingress child did not start")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


# ---- load ---------------------------------------------------------------------------------


async def one(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> float:
    t0 = time.perf_counter()
    async with session.post(url + PATH, data=PAYLOAD, headers=headers) as r:
        await r.read()
        if r.status != 200:
            raise RuntimeError(f"{url}: HTTP {r.status}")
    return time.perf_counter() - t0


async def latencies(direct: str, via: str, n: int, block: int = 100) -> tuple[list[float], ...]:
    out_d: list[float] = []
    out_v: list[float] = []
    hdr = {"Content-Type": "application/json"}
    hdr_v = {**hdr, "Host": HOST}
    async with aiohttp.ClientSession() as s:
        for _ in range(20):  # warm-up: connections, caches
            await one(s, direct, hdr)
            await one(s, via, hdr_v)
        while len(out_d) < n:
            k = min(block, n - len(out_d))
            out_d += [await one(s, direct, hdr) for _ in range(k)]
            out_v += [await one(s, via, hdr_v) for _ in range(k)]
    return out_d, out_v


async def throughput(url: str, headers: dict[str, str], n: int, concurrency: int) -> float:
    remaining = n
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as s:
        for _ in range(concurrency):
            await one(s, url, headers)

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await one(s, url, headers)

        t0 = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), 300)
        return n / (time.perf_counter() - t0)


def pct(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[int(q) - 1]


async def measure(direct: str, via: str, args: argparse.Namespace) -> bool:
    d, v = await latencies(direct, via, args.requests)
    hdr = {"Content-Type": "application/json"}
    rps_d = await throughput(direct, hdr, args.requests * 2, args.concurrency)
    rps_v = await throughput(via, {**hdr, "Host": HOST}, args.requests * 2, args.concurrency)
    rps_d2 = await throughput(direct, hdr, args.requests * 2, args.concurrency)
    rps_d = (rps_d + rps_d2) / 2  # direct before and after, against drift
    ms = 1000.0
    p50d, p99d, p50v, p99v = pct(d, 50), pct(d, 99), pct(v, 50), pct(v, 99)
    added50, added99 = (p50v - p50d) * ms, (p99v - p99d) * ms
    ratio = rps_v / rps_d
    print(f"ingress: {args.ingress}; requests: {args.requests} latency samples each way, "
          f"{args.requests * 2} per throughput run, concurrency {args.concurrency}, "
          f"cc={args.cc}, {os.cpu_count()} CPUs")
    print(f"{'path':<10}{'p50 ms':>10}{'p99 ms':>10}{'req/s':>12}")
    print(f"{'direct':<10}{p50d * ms:>10.3f}{p99d * ms:>10.3f}{rps_d:>12.0f}")
    print(f"{'ingress':<10}{p50v * ms:>10.3f}{p99v * ms:>10.3f}{rps_v:>12.0f}")
    print(f"added latency: p50 {added50:.3f} ms, p99 {added99:.3f} ms; "
          f"throughput ratio {ratio:.2f}")
    ok50, okt = added50 < 2.0, ratio >= 0.5
    print(f"target p50 added < 2 ms: {'PASS' if ok50 else 'FAIL'}; "
          f"throughput >= 0.5 x direct: {'PASS' if okt else 'FAIL'}")
    return ok50 and okt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--cc", type=int, default=0, help="containerConcurrency at the ingress")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--ingress", choices=("emulator", "knative"), default="emulator",
                        help="which ingress to put in front of the model server")
    parser.add_argument("--serve-ingress", type=int, metavar="POD_PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.requests = max(100, min(args.requests, 100_000))
    args.concurrency = max(1, min(args.concurrency, 256))
    if args.serve_ingress:
        if args.ingress == "knative":
            asyncio.run(serve_knative_ingress(args.serve_ingress))
        else:
            asyncio.run(serve_ingress(args.serve_ingress, args.cc))
        return 0
    server = LocalModelServer(pod_name="bench-pod")
    ingress: subprocess.Popen[bytes] | None = None
    try:
        server.start()
        server.wait_ready()
        ingress, via = start_ingress(int(server.url.rsplit(":", 1)[1]), args.cc, args.ingress)
        ok = asyncio.run(measure(server.url, via, args))
    finally:
        if ingress is not None:
            stop_process(ingress)
        server.stop()
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
