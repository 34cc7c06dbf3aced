"""The proxy of our Knative ingress: two listeners (public: ExternalIP rules; private: every
rule) routing by ``Host``, path prefix and exact headers to the Services Knative names.

Per request: the listener's :class:`~harness.upstream.ingress.routes.Table` gives the
first matching path of the host (404 ``no route`` otherwise), its split picks a backend by
percent (:class:`~harness.httpproxy.split.WeightedRoundRobin`, one per path), the path's
then the split's ``appendHeaders`` are set on the request, ``rewriteHost`` replaces
``Host``, and the request goes to the Service's ClusterIP and port (kube-proxy takes it
to a pod) over the shared pool (:mod:`harness.httpproxy`). A request that could not be
sent (connection refused or closed before an answer) is retried once. Answers: 503 when
the split's Service is unresolved, 502 when the backend cannot be reached, 504 when it
sends nothing for ``read_timeout`` seconds (Envoy's stream idle timeout; None = none; by
default 300 s like Envoy's, far above Knative's conformance delays of 10 s before the
head and between bytes). Client headers pass as Envoy passes them: a probe with its own
``K-Network-Hash`` keeps it (the backend's probe handler echoes it, and drops the header
from requests that are no probe).

``on_request`` (optional) sees ``(listener, host, status, seconds)`` of each answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from harness.httpproxy.forward import (
    HeadTimeout,
    UpstreamBroke,
    forward_headers,
    host_key,
    relay,
    request_head,
    start_server,
)
from harness.httpproxy.pool import ConnectFailed, UpstreamClosed, UpstreamError, UpstreamPool
from harness.httpproxy.split import WeightedRoundRobin
from harness.upstream.ingress.routes import Path, Split, Table

log = logging.getLogger(__name__)
DEFAULT_READ_TIMEOUT_S = 300.0
LISTENERS = ("public", "private")


def _text(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text + "\n")


class IngressProxy:
    """Listeners per visibility; :meth:`set_tables` swaps the routes atomically."""

    def __init__(self, addresses: dict[str, Iterable[tuple[str, int]]], *,
                 read_timeout: float | None = DEFAULT_READ_TIMEOUT_S,
                 connect_timeout: float = 2.0,
                 on_request: Callable[[str, str, int, float], None] | None = None) -> None:
        self.addresses = {name: list(addrs) for name, addrs in addresses.items()}
        self.read_timeout = read_timeout
        self.connect_timeout = connect_timeout
        self.on_request = on_request
        self.ports: dict[str, list[int]] = {}
        self._tables: dict[str, Table] = {name: Table() for name in LISTENERS}
        self._splits: dict[int, WeightedRoundRobin[Split]] = {}
        self._runners: list[web.ServerRunner] = []
        self._pool: UpstreamPool | None = None

    async def start(self) -> IngressProxy:
        self._pool = UpstreamPool(self.connect_timeout)
        try:
            for name in LISTENERS:
                runner, ports = await start_server(self._handler(name),
                                                   self.addresses.get(name, []))
                self._runners.append(runner)
                self.ports[name] = ports
        except BaseException:
            await self.stop()
            raise
        return self

    async def stop(self) -> None:
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def set_tables(self, tables: dict[str, Table]) -> None:
        """Program new routes (a split keeps its round-robin state while its path and
        weights stay the same)."""
        old = {self._split_key(p): rr for t in self._tables.values()
               for paths in t.hosts.values() for p in paths
               if (rr := self._splits.get(id(p))) is not None}
        splits: dict[int, WeightedRoundRobin[Split]] = {}
        for table in tables.values():
            for paths in table.hosts.values():
                for p in paths:
                    if len(p.splits) > 1:
                        splits[id(p)] = old.get(self._split_key(p)) or WeightedRoundRobin(
                            [(s, s.percent) for s in p.splits])
        self._tables = {name: tables.get(name, Table()) for name in LISTENERS}
        self._splits = splits

    @staticmethod
    def _split_key(p: Path) -> tuple[Any, ...]:
        return (p.ingress, p.prefix, p.headers, p.splits)

    def tables(self) -> dict[str, Table]:
        return dict(self._tables)

    # ---- request path -----------------------------------------------------------------

    def _handler(self, listener: str) -> Callable[[web.BaseRequest], Any]:
        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            started = time.monotonic()
            host = host_key(request.host)
            status = 0
            try:
                response = await self._route(listener, host, request)
                status = response.status
                return response
            finally:
                if self.on_request is not None:
                    self.on_request(listener, host, status, time.monotonic() - started)
        return handle

    def _pick(self, path: Path) -> Split | None:
        live = [s for s in path.splits if s.percent > 0]
        if not live:
            return None
        if len(path.splits) == 1:
            return path.splits[0]
        rr = self._splits.get(id(path))
        return rr.pick() if rr is not None else live[0]

    async def _route(self, listener: str, host: str,
                     request: web.BaseRequest) -> web.StreamResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        path = self._tables[listener].lookup(host, request.path, headers)
        if path is None:
            return _text(404, f'no route for host "{host}" path "{request.path}" on the '
                         f"{listener} listener of the harness ingress")
        split = self._pick(path)
        if split is None:
            return _text(503, f"no backend with a percent above 0 ({path.ingress})")
        if split.address is None:
            return _text(503, f"backend unavailable: {split.problem} ({path.ingress})")
        set_headers = dict(path.append_headers)
        set_headers.update(split.append_headers)
        fwd = forward_headers(request.headers, request.remote or "", set_headers=set_headers,
                              host=path.rewrite_host or None)
        body = await request.read()
        return await self._forward(request, split, fwd, body)

    async def _forward(self, request: web.BaseRequest, split: Split,
                       headers: list[tuple[str, str]], body: bytes) -> web.StreamResponse:
        pool = self._pool
        if pool is None:
            return _text(503, "ingress is shutting down")
        assert split.address is not None
        where = f"Service {split.namespace}/{split.service} ({split.address[0]}:{split.address[1]})"
        last = ""
        for _attempt in range(2):
            try:
                upstream = await request_head(pool, split.address, request.method,
                                              request.raw_path, headers, body,
                                              self.read_timeout)
            except (ConnectFailed, UpstreamClosed) as exc:
                last = str(exc)
                continue
            except HeadTimeout as exc:
                return _text(504, f"upstream request timeout: {where}: {exc}")
            except UpstreamError as exc:
                return _text(502, f"{where}: {exc}")
            try:
                return await relay(request, upstream, read_timeout=self.read_timeout)
            except UpstreamBroke as exc:
                status = 504 if "no bytes for" in str(exc) else 502
                return _text(status, f"{where} failed mid-answer: {exc}")
            finally:
                upstream.release()
        return _text(502, f"upstream connection failed: {where}: {last}")
