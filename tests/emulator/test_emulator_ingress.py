"""The emulated cluster's ingress: routing, activator buffering, containerConcurrency, metering.

Pods are tiny in-process aiohttp backends that count their own requests in flight (one
test uses a real model-server process). Every test runs its own event loop with a
bounded wait; everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from harness.emulator.dataplane.concurrency import ConcurrencyMeter
from harness.emulator.dataplane.ingress import Ingress

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "fixtures" / "modelserver"))

from modelserver.local import LocalModelServer  # noqa: E402

NS, REV, HOST = "demo", "sklearn-predictor-00001", "sklearn-predictor.demo.example.com"


class Backend:
    """A stand-in pod: echoes the request, sleeps ``delay`` (or ``?delay=``), or waits until
    ``hold`` is set when one is given (bounded by 10 s), counts in-flight."""

    def __init__(self, name: str, delay: float = 0.0,
                 hold: asyncio.Event | None = None) -> None:
        self.name = name
        self.delay = delay
        self.hold = hold
        self.in_flight = 0
        self.max_in_flight = 0
        self.served = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = await request.read()
            if request.path == "/big":
                return web.Response(body=b"x" * (2 << 20), headers={"X-Pod-Name": self.name})
            if request.path == "/chunked":
                resp = web.StreamResponse(headers={"X-Pod-Name": self.name})
                resp.enable_chunked_encoding()
                await resp.prepare(request)
                for part in (b"one,", b"two,", b"three"):
                    await resp.write(part)
                    await asyncio.sleep(0.01)
                await resp.write_eof()
                return resp
            if self.hold is not None:
                await asyncio.wait_for(self.hold.wait(), 10)
            else:
                await asyncio.sleep(float(request.query.get("delay", self.delay)))
            self.served += 1
            return web.json_response(
                {
                    "method": request.method,
                    "path": request.path,
                    "query": request.rel_url.raw_query_string,
                    "body": body.decode(),
                    "headers": {k: v for k, v in request.headers.items()},
                },
                headers={"X-Pod-Name": self.name, "X-Extra": "kept"},
            )
        finally:
            self.in_flight -= 1

    async def start(self) -> Backend:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    @property
    def endpoint(self) -> tuple[str, str, int]:
        return (self.name, "127.0.0.1", self.port)


def run(coro_fn: Callable[[], Awaitable[Any]], limit: float = 20.0) -> Any:
    async def main() -> Any:
        async with asyncio.timeout(limit):
            return await coro_fn()

    return asyncio.run(main())


async def get(session: aiohttp.ClientSession, ingress: Ingress, path: str = "/",
              host: str = HOST, **kw: Any) -> tuple[int, dict[str, Any] | str, Any]:
    async with session.request(kw.pop("method", "GET"), ingress.url + path,
                               headers={"Host": host, **kw.pop("headers", {})}, **kw) as r:
        text = await r.text()
        try:
            body: dict[str, Any] | str = json.loads(text)
        except ValueError:
            body = text
        return r.status, body, r.headers


async def wait_until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class FakeClock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# ---- meter ------------------------------------------------------------------------------


def test_meter_time_weighted_average_with_fake_clock() -> None:
    clock = FakeClock(100.0)
    meter = ConcurrencyMeter(clock, lambda: (1, 0, 2))
    clock.t = 100.25
    meter.arrive(proxied=False)
    clock.t = 100.5
    meter.arrive(proxied=True)
    clock.t = 101.5
    meter.depart(proxied=True)
    clock.t = 102.0
    stats = meter.take()
    # [100, 101): 1 in flight for 0.25 s + 2 for 0.5 s = 1.25; [101, 102): 2*0.5 + 1*0.5 = 1.5
    assert [s.time for s in stats] == [101.0, 102.0]
    assert stats[0].average_concurrency == pytest.approx(1.25)
    assert stats[0].proxied_concurrency == pytest.approx(0.5)
    assert (stats[0].request_count, stats[0].proxied_request_count) == (2, 1)
    assert stats[1].average_concurrency == pytest.approx(1.5)
    assert stats[1].proxied_concurrency == pytest.approx(0.5)
    assert (stats[1].request_count, stats[1].buffered, stats[1].pods) == (0, 1, 2)
    assert meter.take() == []
    clock.t = 10_000.0  # long idle: bounded, constant concurrency 1
    idle = meter.take()
    assert len(idle) == 3600 and idle[-1].time == 10_000.0
    assert all(s.average_concurrency == pytest.approx(1.0) for s in idle)
    meter.arrive(proxied=False, counted=False)
    clock.t = 10_001.0
    (last,) = meter.take()
    assert last.request_count == 0 and last.average_concurrency == pytest.approx(2.0)


# ---- routing and forwarding ---------------------------------------------------------------


def test_host_routing_forwarding_and_404() -> None:
    async def body() -> None:
        a, b = await Backend("pod-a").start(), await Backend("pod-b").start()
        ingress = Ingress()
        await ingress.start()
        try:
            ingress.set_route(HOST, NS, REV)
            ingress.set_route("other.demo.example.com", NS, "other-00001")
            ingress.set_endpoints(NS, REV, [a.endpoint], 0)
            ingress.set_endpoints(NS, "other-00001", [b.endpoint], 0)
            async with aiohttp.ClientSession() as s:
                status, echo, headers = await get(
                    s, ingress, "/v1/models/m:predict?x=1&y=%20z", host=HOST + ":8080",
                    method="POST", data=b'{"instances": [[1,2,3,4]]}',
                    headers={"X-Forwarded-For": "10.0.0.1", "Connection": "X-Hop",
                             "X-Hop": "secret", "X-Custom": "v"},
                )
                assert status == 200 and headers["X-Pod-Name"] == "pod-a"
                assert headers["X-Extra"] == "kept"
                assert isinstance(echo, dict)
                assert echo["method"] == "POST" and echo["path"] == "/v1/models/m:predict"
                assert echo["query"] == "x=1&y=%20z"
                assert echo["body"] == '{"instances": [[1,2,3,4]]}'
                sent = echo["headers"]
                assert sent["X-Custom"] == "v" and "X-Hop" not in sent
                assert sent["X-Forwarded-For"] == "10.0.0.1, 127.0.0.1"
                assert sent["Host"] == HOST + ":8080"
                status, _, headers = await get(s, ingress, host="OTHER.demo.example.com")
                assert status == 200 and headers["X-Pod-Name"] == "pod-b"
                status, text, _ = await get(s, ingress, host="nope.demo.example.com")
                assert status == 404 and 'no route for host "nope.demo.example.com"' in text
                ingress.remove_route(HOST)
                assert (await get(s, ingress))[0] == 404
            assert (a.served, b.served) == (1, 1)
        finally:
            await ingress.stop()
            await a.stop()
            await b.stop()

    run(body)


def test_large_chunked_and_head_answers_stream_through() -> None:
    async def body() -> None:
        pod = await Backend("pod-a").start()
        async with Ingress() as ingress, aiohttp.ClientSession() as s:
            ingress.set_route(HOST, NS, REV)
            ingress.set_endpoints(NS, REV, [pod.endpoint], 1)
            headers = {"Host": HOST}
            async with s.get(ingress.url + "/big", headers=headers) as r:
                assert r.status == 200 and len(await r.read()) == 2 << 20
                assert r.headers["X-Pod-Name"] == "pod-a"
            async with s.get(ingress.url + "/chunked", headers=headers) as r:
                assert r.status == 200 and await r.read() == b"one,two,three"
            async with s.head(ingress.url + "/", headers=headers) as r:
                assert r.status == 200 and await r.read() == b""
            for _ in range(3):  # the pooled connection is still good after all that
                status, echo, _ = await get(s, ingress, "/after", method="PUT", data=b"z")
                assert status == 200 and isinstance(echo, dict) and echo["body"] == "z"
        await pod.stop()

    run(body)


def test_real_model_server_answers_through_ingress() -> None:
    with LocalModelServer(pod_name="isvc-pod-1") as server:
        server.wait_ready()
        port = int(server.url.rsplit(":", 1)[1])

        async def body() -> None:
            async with Ingress() as ingress, aiohttp.ClientSession() as s:
                ingress.set_route(HOST, NS, REV)
                ingress.set_endpoints(NS, REV, [("isvc-pod-1", "127.0.0.1", port)], 1)
                status, out, headers = await get(
                    s, ingress, "/v1/models/linear:predict", method="POST",
                    json={"instances": [[1.0, 2.0, 3.0, 4.0]]})
                assert status == 200, out
                assert headers["X-Pod-Name"] == "isvc-pod-1"
                assert isinstance(out, dict) and len(out["predictions"][0]) == 3

        run(body)
        assert server.inference_count() == 1


# ---- activator ------------------------------------------------------------------------------


def test_buffers_at_zero_then_releases_and_marks_proxied() -> None:
    calls: list[tuple[str, str]] = []

    async def body() -> None:
        pod = await Backend("pod-a", delay=0.05).start()
        ingress = Ingress(on_first_request=lambda ns, rev: calls.append((ns, rev)))
        await ingress.start()
        try:
            ingress.set_route(HOST, NS, REV)
            ingress.set_endpoints(NS, REV, [], 1)
            async with aiohttp.ClientSession() as s:
                tasks = [asyncio.create_task(get(s, ingress)) for _ in range(3)]
                gate = ingress._gates[(NS, REV)]
                await wait_until(lambda: gate.waiting == 3)
                assert calls == [(NS, REV)]  # at arrival, exactly once
                await asyncio.sleep(0.3)
                assert not any(t.done() for t in tasks) and pod.served == 0
                ingress.set_endpoints(NS, REV, [pod.endpoint], 1)
                results = await asyncio.gather(*tasks)
                assert [r[0] for r in results] == [200, 200, 200]
                assert pod.max_in_flight == 1
                assert calls == [(NS, REV)]
                # with a pod: not proxied, no new activation
                assert (await get(s, ingress))[0] == 200
                assert calls == [(NS, REV)]
                await asyncio.sleep(1.05)
                stats = ingress.take_stats(NS, REV)
                assert sum(st.request_count for st in stats) == 3  # first one reported apart
                assert sum(st.proxied_request_count for st in stats) == 2
                assert max(st.buffered for st in stats) <= 3
                assert sum(st.proxied_concurrency for st in stats) > 0.3 * 3 * 0.9
                assert sum(st.average_concurrency - st.proxied_concurrency
                           for st in stats) < 0.2
                # back to zero: the next request activates again
                ingress.set_endpoints(NS, REV, [], 1)
                task = asyncio.create_task(get(s, ingress))
                await wait_until(lambda: len(calls) == 2)
                ingress.set_endpoints(NS, REV, [pod.endpoint], 1)
                assert (await task)[0] == 200
        finally:
            await ingress.stop()
            await pod.stop()

    run(body)


def test_buffered_stat_counts_waiting_requests() -> None:
    async def body() -> None:
        async with Ingress() as ingress, aiohttp.ClientSession() as s:
            ingress.set_route(HOST, NS, REV)
            tasks = [asyncio.create_task(get(s, ingress)) for _ in range(2)]
            await wait_until(lambda: ingress._gates[(NS, REV)].waiting == 2)
            now = time.monotonic()
            await asyncio.sleep(1.0 - (now % 1.0) + 0.05)  # past the next whole second
            stats = ingress.take_stats(NS, REV)
            assert stats and stats[-1].buffered == 2 and stats[-1].pods == 0
            await ingress.stop()
            for t in tasks:  # stop answered them with 503
                assert (await t)[0] == 503

    run(body)


def test_activator_timeout_and_full_queue_give_503() -> None:
    async def body() -> None:
        async with Ingress(activator_timeout=0.4, max_buffered=2) as ingress, \
                aiohttp.ClientSession() as s:
            ingress.set_route(HOST, NS, REV)
            t0 = time.monotonic()
            waiting = [asyncio.create_task(get(s, ingress)) for _ in range(2)]
            await wait_until(lambda: ingress._gates[(NS, REV)].waiting == 2)
            status, text, _ = await get(s, ingress)
            assert status == 503 and "full" in text and time.monotonic() - t0 < 0.35
            results = await asyncio.gather(*waiting)
            elapsed = time.monotonic() - t0
            assert [r[0] for r in results] == [503, 503]
            assert "activator timeout" in results[0][1]
            assert 0.4 <= elapsed < 1.5
            assert ingress._gates[(NS, REV)].waiting == 0
            assert ingress.in_flight(NS, REV) == 0

    run(body)


# ---- queue-proxy ----------------------------------------------------------------------------


def test_container_concurrency_one_is_enforced() -> None:
    async def body() -> None:
        pods = [await Backend(f"pod-{i}", delay=0.1).start() for i in range(2)]
        ingress = Ingress()
        await ingress.start()
        try:
            ingress.set_route(HOST, NS, REV)
            ingress.set_endpoints(NS, REV, [p.endpoint for p in pods], 1)
            async with aiohttp.ClientSession() as s:
                t0 = time.monotonic()
                results = await asyncio.gather(*(get(s, ingress) for _ in range(8)))
                elapsed = time.monotonic() - t0
            assert [r[0] for r in results] == [200] * 8
            assert [p.max_in_flight for p in pods] == [1, 1]
            assert [p.served for p in pods] == [4, 4]
            assert elapsed >= 0.4 - 0.02  # 8 requests, 2 slots, 0.1 s each
            assert [p.max_in_flight for p in ingress.pods(NS, REV)] == [1, 1]
            # cc = 0: unlimited
            ingress.set_endpoints(NS, REV, [pods[0].endpoint], 0)
            async with aiohttp.ClientSession() as s:
                await asyncio.gather(*(get(s, ingress) for _ in range(5)))
            assert pods[0].max_in_flight == 5
        finally:
            await ingress.stop()
            for p in pods:
                await p.stop()

    run(body)


def test_balances_on_least_in_flight() -> None:
    async def body() -> None:
        pods = [await Backend(f"pod-{i}").start() for i in range(3)]
        ingress = Ingress()
        await ingress.start()
        try:
            ingress.set_route(HOST, NS, REV)
            ingress.set_endpoints(NS, REV, [p.endpoint for p in pods], 0)
            async with aiohttp.ClientSession() as s:
                # one long request pins pod-X; the others must go elsewhere
                slow = asyncio.create_task(get(s, ingress, "/?delay=0.5"))
                await wait_until(lambda: sum(p.in_flight for p in pods) == 1)
                busy = next(p for p in pods if p.in_flight == 1)
                results = await asyncio.gather(*(get(s, ingress, "/?delay=0.1")
                                                 for _ in range(2)))
                assert busy.max_in_flight == 1
                by_pod = Counter(r[2]["X-Pod-Name"] for r in results)
                assert sorted(by_pod.values()) == [1, 1] and busy.name not in by_pod
                # 5 more with one pod busy: 2 each on the idle ones, 1 on the busy one
                results = await asyncio.gather(*(get(s, ingress, "/?delay=0.1")
                                                 for _ in range(5)))
                by_pod = Counter(r[2]["X-Pod-Name"] for r in results)
                assert by_pod[busy.name] == 1 and sorted(by_pod.values()) == [1, 2, 2]
                assert (await slow)[0] == 200
                # sequential requests rotate over all pods
                names = [(await get(s, ingress))[2]["X-Pod-Name"] for _ in range(6)]
                assert Counter(names) == {p.name: 2 for p in pods}
        finally:
            await ingress.stop()
            for p in pods:
                await p.stop()

    run(body)


# ---- metering -------------------------------------------------------------------------------


def test_average_concurrency_matches_closed_loop_load() -> None:
    """4 closed-loop clients, each with one 0.25 s request in flight -> 4.0 (+-0.2) per second."""

    async def body() -> None:
        pods = [await Backend(f"pod-{i}", delay=0.25).start() for i in range(2)]
        ingress = Ingress()
        await ingress.start()
        try:
            ingress.set_route(HOST, NS, REV)
            ingress.set_endpoints(NS, REV, [p.endpoint for p in pods], 0)
            stop_at = time.monotonic() + 3.6

            async def client(s: aiohttp.ClientSession) -> int:
                n = 0
                while time.monotonic() < stop_at and n < 100:
                    assert (await get(s, ingress))[0] == 200
                    n += 1
                return n

            ingress.take_stats(NS, REV)
            t_start = time.monotonic()
            async with aiohttp.ClientSession() as s:
                counts = await asyncio.gather(*(client(s) for _ in range(4)))
            t_end = time.monotonic()
            stats = [st for st in ingress.take_stats(NS, REV)
                     if st.time - 1.0 >= t_start and st.time <= t_end]
            assert len(stats) >= 2
            for st in stats:
                assert st.average_concurrency == pytest.approx(4.0, abs=0.2), stats
                assert 11 <= st.request_count <= 17, stats  # 4 clients x 3-4 cycles
                assert st.proxied_concurrency == 0 and st.proxied_request_count == 0
                assert st.pods == 2 and st.buffered == 0
            assert sum(counts) >= 4 * 12
        finally:
            await ingress.stop()
            for p in pods:
                await p.stop()

    run(body)


def test_cc_wait_counts_in_concurrency_and_queue() -> None:
    async def body() -> None:
        # the pod holds its request until released (not a fixed delay: on a loaded machine
        # the first request could finish before the third arrived)
        release = asyncio.Event()
        pod = await Backend("pod-0", hold=release).start()
        ingress = Ingress()
        await ingress.start()
        try:
            ingress.set_route(HOST, NS, REV)
            ingress.set_endpoints(NS, REV, [pod.endpoint], 1)
            async with aiohttp.ClientSession() as s:
                tasks = [asyncio.create_task(get(s, ingress)) for _ in range(3)]
                await wait_until(lambda: ingress.in_flight(NS, REV) == 3)
                gate = ingress._gates[(NS, REV)]
                assert gate.waiting == 2 and pod.in_flight == 1
                release.set()
                assert [r[0] for r in await asyncio.gather(*tasks)] == [200] * 3
            assert pod.max_in_flight == 1
        finally:
            await ingress.stop()
            await pod.stop()

    run(body)


# ---- pods going away -------------------------------------------------------------------------


def test_pod_going_away_mid_run_is_retried_on_another() -> None:
    async def body() -> None:
        a = await Backend("pod-a", delay=0.02).start()
        b = await Backend("pod-b", delay=0.02).start()
        ingress = Ingress()
        await ingress.start()
        try:
            ingress.set_route(HOST, NS, REV)
            ingress.set_endpoints(NS, REV, [a.endpoint, b.endpoint], 0)
            statuses: list[int] = []
            pods_after: list[str] = []
            a_gone = asyncio.Event()

            async def client(s: aiohttp.ClientSession) -> None:
                for _ in range(40):
                    started_after = a_gone.is_set()
                    status, _, headers = await get(s, ingress)
                    statuses.append(status)
                    if started_after:
                        pods_after.append(headers.get("X-Pod-Name", ""))

            async with aiohttp.ClientSession() as s:
                clients = [asyncio.create_task(client(s)) for _ in range(4)]
                await wait_until(lambda: a.served >= 10 and b.served >= 10)
                await a.stop()  # endpoints still list it: the ingress finds out itself
                a_gone.set()
                await asyncio.gather(*clients)
            assert statuses == [200] * 160
            assert pods_after and set(pods_after) == {"pod-b"}
            # the only pod gone: 502/503, never a hang
            ingress.set_endpoints(NS, REV, [a.endpoint], 0)
            ingress.activator_timeout = 0.5
            async with aiohttp.ClientSession() as s:
                status, _, _ = await get(s, ingress)
            assert status in (502, 503)
        finally:
            await ingress.stop()
            await a.stop()
            await b.stop()

    run(body)


def test_removed_endpoint_gets_no_new_requests_and_stop_is_clean() -> None:
    async def body() -> None:
        a, b = await Backend("pod-a", delay=0.3).start(), await Backend("pod-b").start()
        ingress = Ingress()
        await ingress.start()
        try:
            ingress.set_route(HOST, NS, REV)
            ingress.set_endpoints(NS, REV, [a.endpoint], 1)
            async with aiohttp.ClientSession() as s:
                inflight = asyncio.create_task(get(s, ingress))
                await wait_until(lambda: a.in_flight == 1)
                ingress.set_endpoints(NS, REV, [b.endpoint], 1)
                status, _, headers = await get(s, ingress)
                assert status == 200 and headers["X-Pod-Name"] == "pod-b"
                assert (await inflight)[0] == 200  # the old pod's request finished
                assert a.served == 1
                ingress.set_endpoints(NS, REV, [], 1)
                parked = asyncio.create_task(get(s, ingress))
                await wait_until(lambda: ingress._gates[(NS, REV)].waiting == 1)
                await ingress.stop()
                assert (await parked)[0] == 503
            await a.stop()
            await b.stop()
            await asyncio.sleep(0.05)
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            assert others == [], [t.get_coro() for t in others]
        finally:
            await ingress.stop()
            await a.stop()
            await b.stop()

    run(body)


def test_a_split_sends_each_revision_its_percent_and_collapses_to_one() -> None:
    """Smooth weighted round-robin: any 100 picks match the percentages exactly; a split
    with one revision (or 0 % for the rest) is a plain route; remove_route drops both."""
    ingress = Ingress()
    ingress.set_split(HOST, NS, [("a-00001", 80), ("a-00002", 20), ("a-00003", 0)])
    assert ingress.splits()[HOST] == [((NS, "a-00001"), 80), ((NS, "a-00002"), 20)]
    split = ingress._splits[HOST]  # noqa: SLF001 - the picker itself
    picks = [split.pick()[1] for _ in range(1000)]
    for start in (0, 100, 537):
        window = picks[start:start + 100]
        assert window.count("a-00002") == 20 and window.count("a-00001") == 80
    assert "a-00002" in picks[:5]  # interleaved, not 80 then 20
    ingress.set_split(HOST, NS, [("a-00002", 100), ("a-00001", 0)])
    assert ingress.routes()[HOST] == (NS, "a-00002") and HOST not in ingress.splits()
    ingress.set_split(HOST, NS, [("a-00001", 50), ("a-00001", 50)])
    assert ingress.routes()[HOST] == (NS, "a-00001")
    ingress.set_split(HOST, NS, [("a-00001", 50), ("a-00002", 50)])
    ingress.remove_route(HOST)
    assert HOST not in ingress.routes() and HOST not in ingress.splits()
