"""The emulated cluster's one ingress: Kourier + activator + queue-proxy on one asyncio server.

Routes by ``Host`` header to the ready pods of a revision (each pod is a local process
of the model server on its own 127.0.0.1 port), holds requests while the revision has
no ready pod and releases them when one appears (503 after ``activator_timeout``, or at
once when ``max_buffered`` requests already wait), lets at most containerConcurrency
requests at a pod at once (0 = unlimited; the excess waits for a slot), balances on the
fewest requests in flight, and meters every revision's concurrency per second.

API (the controllers code against it)::

    ingress = Ingress("127.0.0.1", 0, activator_timeout=60.0, clock=time.monotonic,
                      max_buffered=10_000, on_first_request=None, connect_timeout=2.0)
    await ingress.start(); ingress.url            # "http://127.0.0.1:PORT"
    ingress.set_route(host, namespace, revision)  # host without port, case-insensitive
    ingress.set_split(host, namespace, [(revision, percent), ...])  # a traffic split
    ingress.remove_route(host)                    # unknown Host -> 404 with a clear body
    ingress.set_endpoints(namespace, revision, [(pod_name, ip, port), ...], cc)
                                                  # READY pods; [] = no ready pod (buffer)
    ingress.set_proxy_mode(namespace, revision, True)  # SKS Proxy: mark all its traffic
                                                  # proxied (always so while it has no pod)
    ingress.proxy_mode(namespace, revision) -> bool  # activator in the path now
    ingress.remove_revision(namespace, revision)  # forget state and stats
    ingress.take_stats(namespace, revision) -> list[Stat]  # drains closed 1 s periods
    ingress.take_all_stats() -> dict[(namespace, revision), list[Stat]]
    ingress.on_first_request = callback(namespace, revision)
    ingress.pods(namespace, revision) -> list[Pod] # in_flight, max_in_flight, served
    ingress.in_flight(namespace, revision) -> int  # requests at the ingress right now
    ingress.routes() -> dict[host, (namespace, revision)]
    await ingress.stop()                          # closes listener, waiters, pool

``Stat`` (:mod:`harness.emulator.dataplane.concurrency`) is frozen: ``time`` (end of the 1 s
period on the injected clock, **monotonic** by default; periods are aligned to whole
seconds of that clock), ``average_concurrency``, ``request_count``,
``proxied_concurrency``, ``proxied_request_count``, ``buffered`` (waiting in the
activator at the period's end), ``queued`` (waiting for a pod's slot), ``pods``.
A request is in flight from its arrival at the ingress until its response is fully
sent, waiting included (queue-proxy and the activator count the same way). A request is
*proxied* (took the activator path) when it arrived while its revision had no ready pod,
or while proxy mode was set. ``average_concurrency`` covers all requests, so it already
equals Knative's "pods minus proxied, plus activator" total; see :class:`Stat`.

``on_first_request(namespace, revision)`` is called synchronously at the arrival of a
request for a revision with no endpoints that was not already activating (the
activator's immediate stat with concurrency 1 and request count 1, plus the poke); it
may return an awaitable, which is run as a task. As in the activator, that request is
then left out of its period's ``request_count`` (it is still in the concurrency).
"Activating" ends when the revision gets endpoints.

A split (Knative's Route ``traffic`` with several revisions, as Kourier programs
Envoy's weighted clusters) sends each request to one revision in proportion to the
percentages; the pick is smooth weighted round-robin (nginx's), so any run of 100
requests matches the percentages exactly where Envoy's is random with the same mean.
Each revision keeps its own gate, buffer and meter, so each PodAutoscaler sees only its
own share of the load.

Forwarding keeps method, path, query, body and headers (hop-by-hop ones dropped, Host
kept), appends the client to ``X-Forwarded-For``, and passes the answer back with its
headers (the model server's ``X-Pod-Name`` included); answers over 1 MiB or chunked are
streamed. The hop to the pod uses the lean pooled HTTP/1.1 client of
:mod:`harness.httpproxy.pool` (aiohttp's client cost too much CPU), with the
header handling of :mod:`harness.httpproxy.forward` that the upstream cluster's Knative
ingress shares. A pod that
refuses the connection is skipped for a second; a request whose pod refused it or closed
it before answering is retried once on another pod (waiting for one like any request;
inference is idempotent); when that fails too the answer is 502.
The activator timeout and ``clock`` differ in one way: waits use the event loop's clock,
metering and the skip period use ``clock``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from harness.emulator.dataplane.activator import AdmissionError, Pod, RevisionGate
from harness.emulator.dataplane.concurrency import Stat
from harness.httpproxy.forward import (
    UpstreamBroke,
    forward_headers,
    host_key,
    relay,
    start_server,
)
from harness.httpproxy.pool import ConnectFailed, UpstreamClosed, UpstreamError, UpstreamPool
from harness.httpproxy.split import WeightedRoundRobin

__all__ = ["Ingress", "Pod", "Stat"]

log = logging.getLogger(__name__)

RevisionKey = tuple[str, str]
FirstRequestHook = Callable[[str, str], "None | Awaitable[Any]"]


class Ingress:
    """One aiohttp server routing by Host header to revisions' ready pods."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        activator_timeout: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_buffered: int = 10_000,
        on_first_request: FirstRequestHook | None = None,
        connect_timeout: float = 2.0,
    ) -> None:
        self.host = host
        self.port = port
        self.activator_timeout = activator_timeout
        self.clock = clock
        self.max_buffered = max_buffered
        self.on_first_request = on_first_request
        self.connect_timeout = connect_timeout
        self._routes: dict[str, RevisionKey] = {}
        self._splits: dict[str, WeightedRoundRobin[RevisionKey]] = {}
        self._gates: dict[RevisionKey, RevisionGate] = {}
        self._runner: web.ServerRunner | None = None
        self._pool: UpstreamPool | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.url = ""
        self.drop_buffered: Callable[[str, str], bool] | None = None
        """Mutation hook: True answers a buffered request (not the first at zero) 503."""
        self.truth: Any = None
        """A :class:`~harness.emulator.truth.TruthLog` for request instants, or None."""

    # ---- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("ingress already started")
        self._pool = UpstreamPool(self.connect_timeout)
        try:
            self._runner, ports = await start_server(self._handle, [(self.host, self.port)])
        except BaseException:
            await self.stop()
            raise
        self.port = ports[0]
        self.url = f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        """Close the listener, answer every waiting request with 503, close the pool."""
        for gate in self._gates.values():
            gate.close()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def __aenter__(self) -> Ingress:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- configuration (called by the controllers) -------------------------------------

    def _gate(self, namespace: str, revision: str) -> RevisionGate:
        key = (namespace, revision)
        gate = self._gates.get(key)
        if gate is None:
            gate = RevisionGate(namespace, revision, clock=self.clock,
                                max_waiting=self.max_buffered)
            self._gates[key] = gate
        return gate

    def set_route(self, host: str, namespace: str, revision: str) -> None:
        self._splits.pop(host_key(host), None)
        self._routes[host_key(host)] = (namespace, revision)
        self._gate(namespace, revision)

    def set_split(self, host: str, namespace: str, targets: list[tuple[str, int]]) -> None:
        """Route ``host`` to several revisions by percent (targets with 0 % are dropped,
        one revision named twice gets the sum)."""
        merged: dict[str, int] = {}
        for revision, percent in targets:
            if int(percent) > 0:
                merged[revision] = merged.get(revision, 0) + int(percent)
        if not merged:
            self.remove_route(host)
            return
        if len(merged) == 1:
            self.set_route(host, namespace, next(iter(merged)))
            return
        key = host_key(host)
        want = [((namespace, rev), pct) for rev, pct in merged.items()]
        old = self._splits.get(key)
        if old is None or list(zip(old.targets, old.weights, strict=True)) != want:
            self._splits[key] = WeightedRoundRobin(want)
        self._routes.pop(key, None)
        for rev in merged:
            self._gate(namespace, rev)

    def remove_route(self, host: str) -> None:
        self._routes.pop(host_key(host), None)
        self._splits.pop(host_key(host), None)

    def routes(self) -> dict[str, RevisionKey]:
        """Hosts with a single revision."""
        return dict(self._routes)

    def splits(self) -> dict[str, list[tuple[RevisionKey, int]]]:
        """Hosts split between revisions: (revision, percent) each."""
        return {h: list(zip(s.targets, s.weights, strict=True)) for h, s in self._splits.items()}

    def set_endpoints(
        self,
        namespace: str,
        revision: str,
        endpoints: list[tuple[str, str, int]],
        container_concurrency: int,
    ) -> None:
        self._gate(namespace, revision).set_endpoints(endpoints, container_concurrency)

    def set_proxy_mode(self, namespace: str, revision: str, proxy: bool) -> None:
        self._gate(namespace, revision).proxy_mode = proxy

    def proxy_mode(self, namespace: str, revision: str) -> bool:
        """True while the revision's requests take the activator path."""
        gate = self._gates.get((namespace, revision))
        return gate is None or gate.proxy_mode or not gate.has_endpoints

    def remove_revision(self, namespace: str, revision: str) -> None:
        gate = self._gates.pop((namespace, revision), None)
        if gate is not None:
            gate.close()

    # ---- observation -------------------------------------------------------------------

    def take_stats(self, namespace: str, revision: str) -> list[Stat]:
        gate = self._gates.get((namespace, revision))
        return gate.meter.take() if gate is not None else []

    def take_all_stats(self) -> dict[RevisionKey, list[Stat]]:
        return {key: gate.meter.take() for key, gate in self._gates.items()}

    def pods(self, namespace: str, revision: str) -> list[Pod]:
        gate = self._gates.get((namespace, revision))
        return list(gate.pods) if gate is not None else []

    def in_flight(self, namespace: str, revision: str) -> int:
        gate = self._gates.get((namespace, revision))
        return gate.meter.in_flight if gate is not None else 0

    # ---- request path ------------------------------------------------------------------

    def _fire_first_request(self, namespace: str, revision: str) -> None:
        hook = self.on_first_request
        if hook is None:
            return
        try:
            result = hook(namespace, revision)
        except Exception:
            log.exception("on_first_request(%s, %s) failed", namespace, revision)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        host = host_key(request.host)
        key = self._routes.get(host)
        if key is None and self._splits:
            split = self._splits.get(host)
            if split is not None:
                key = split.pick()
        if key is None:
            return web.Response(
                status=404,
                text=f'no route for host "{host}": no InferenceService or revision '
                f"serves it (known hosts: {len(self._routes) + len(self._splits)})\n",
            )
        gate = self._gates.get(key) or self._gate(*key)
        arrived = time.time()
        body = await request.read()
        proxied = gate.proxy_mode or not gate.has_endpoints
        first = not gate.has_endpoints and not gate.activating
        if (not first and not gate.has_endpoints and self.drop_buffered is not None
                and self.drop_buffered(*key)):
            return web.Response(status=503, text="activator: request dropped (mutation)\n")
        if first:
            gate.activating = True
        gate.meter.arrive(proxied, counted=not (first and self.on_first_request is not None))
        if first:
            self._fire_first_request(*key)
        status = 0
        try:
            response = await self._forward(request, gate, body, proxied)
            status = response.status
            return response
        finally:
            gate.meter.depart(proxied)
            if self.truth is not None:
                self.truth.add("request", key[0], key[1], when=arrived,
                               done=time.time(), status=status, first=first)

    async def _forward(
        self, request: web.BaseRequest, gate: RevisionGate, body: bytes, proxied: bool
    ) -> web.StreamResponse:
        pool = self._pool
        if pool is None:
            return web.Response(status=503, text="ingress is shutting down\n")
        headers = forward_headers(request.headers, request.remote or "")
        deadline = asyncio.get_running_loop().time() + self.activator_timeout
        exclude: frozenset[tuple[str, str, int]] = frozenset()
        last_error = ""
        for _attempt in range(2):
            try:
                pod = await gate.acquire(deadline, proxied=proxied, exclude=exclude)
            except AdmissionError as exc:
                return web.Response(status=exc.status, text=f"{exc}\n")
            try:
                try:
                    upstream = await pool.request((pod.ip, pod.port), request.method,
                                                  request.raw_path, headers, body)
                except (ConnectFailed, UpstreamClosed) as exc:
                    if isinstance(exc, ConnectFailed):
                        gate.mark_broken(pod)  # refused or unreachable: skip it a while
                    exclude = exclude | {pod.key}
                    last_error = f"pod {pod.name} ({pod.ip}:{pod.port}): {exc}"
                    continue
                except UpstreamError as exc:
                    return web.Response(status=502, text=f"pod {pod.name}: {exc}\n")
                try:
                    return await relay(request, upstream)
                except UpstreamBroke as exc:  # the pod died before its answer was read
                    return web.Response(
                        status=502, text=f"pod {pod.name} failed mid-answer: {exc}\n"
                    )
                finally:
                    upstream.release()
            finally:
                gate.release(pod)
        return web.Response(status=502, text=f"upstream connection failed: {last_error}\n")
