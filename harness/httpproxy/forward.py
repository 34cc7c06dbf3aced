"""One request forwarded by an ingress: the headers sent on, the answer relayed back.

Both ingresses (the emulator's, :mod:`harness.emulator.dataplane.ingress`, and the upstream
cluster's Knative one, :mod:`harness.upstream.ingress.proxy`) forward through these
functions and :mod:`harness.httpproxy.pool`, so header handling lives in one place:

* :func:`forward_headers`: method-independent request headers for the hop: hop-by-hop
  headers (RFC 9110 section 7.6.1, and any named in ``Connection``), ``Content-Length``
  and ``Expect`` dropped (the pool writes its own length), ``Host`` kept (or rewritten),
  the client appended to ``X-Forwarded-For``, then ``set_headers`` set (an existing header
  of that name replaced, as Envoy's ``append: false``, which Knative ingresses use for
  ``appendHeaders``).
* :func:`relay`: the answer with its status, reason and headers (hop-by-hop dropped);
  bodies up to 1 MiB with a length are read whole, others streamed. ``read_timeout``
  bounds each wait for the next bytes (None: no bound); a stall before the head is the
  caller's (:func:`request_head`).
* :func:`request_head`: send the request and wait for the answer's head, at most
  ``read_timeout`` (:class:`HeadTimeout`).
* :func:`start_server`: the lean aiohttp low-level server both ingresses listen with.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from harness.httpproxy.pool import UpstreamError, UpstreamPool, UpstreamResponse

HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE",
        "Trailer", "Transfer-Encoding", "Upgrade", "Proxy-Connection",
    )
)
_DROP_REQUEST = HOP_BY_HOP | {"content-length", "expect"}
_DROP_RESPONSE = HOP_BY_HOP | {"content-length"}
BUFFER_LIMIT = 1 << 20  # answers up to this size are read whole, larger ones streamed
MAX_BODY = 64 << 20


class UpstreamBroke(Exception):
    """The backend's answer broke off (or stalled past the read timeout) before anything
    was sent to the client."""


class HeadTimeout(Exception):
    """No answer head within the read timeout."""


def connection_named(headers: Any) -> frozenset[str]:
    """Header names listed in ``Connection`` (hop-by-hop too)."""
    values = headers.getall("Connection", ())
    if not values:
        return frozenset()
    return frozenset(t.strip().lower() for v in values for t in v.split(",") if t.strip())


def host_key(host: str) -> str:
    """A ``Host`` header as a routing key: lower case, without its port."""
    host = host.strip().lower()
    if host.startswith("["):  # [v6]:port
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def forward_headers(headers: Any, peer: str, *, set_headers: Mapping[str, str] | None = None,
                    host: str | None = None) -> list[tuple[str, str]]:
    """The request headers to send on (see the module docstring)."""
    named = connection_named(headers)
    replace = {k.lower() for k in set_headers} if set_headers else set()
    if host is not None:
        replace.add("host")
    out = [(k, v) for k, v in headers.items()
           if (lk := k.lower()) not in _DROP_REQUEST and lk not in named
           and lk != "x-forwarded-for" and lk not in replace]
    if host is not None:
        out.insert(0, ("Host", host))
    prior = ", ".join(headers.getall("X-Forwarded-For", ()))
    out.append(("X-Forwarded-For", f"{prior}, {peer}" if prior else peer))
    if set_headers:
        out.extend(set_headers.items())
    return out


async def request_head(pool: UpstreamPool, addr: tuple[str, int], method: str, target: str,
                       headers: Iterable[tuple[str, str]], body: bytes,
                       read_timeout: float | None = None) -> UpstreamResponse:
    """:meth:`UpstreamPool.request` bounded by ``read_timeout`` (:class:`HeadTimeout`)."""
    if read_timeout is None:
        return await pool.request(addr, method, target, headers, body)
    try:
        async with asyncio.timeout(read_timeout):
            return await pool.request(addr, method, target, headers, body)
    except TimeoutError as exc:
        raise HeadTimeout(f"no answer within {read_timeout:g} s") from exc


async def _chunks(upstream: UpstreamResponse, read_timeout: float | None) -> AsyncIterator[bytes]:
    it = upstream.iter_chunks().__aiter__()
    while True:
        try:
            if read_timeout is None:
                chunk = await it.__anext__()
            else:
                chunk = await asyncio.wait_for(it.__anext__(), read_timeout)
        except StopAsyncIteration:
            return
        except TimeoutError as exc:
            raise UpstreamError(f"no bytes for {read_timeout:g} s") from exc
        yield chunk


async def relay(request: web.BaseRequest, upstream: UpstreamResponse, *,
                read_timeout: float | None = None) -> web.StreamResponse:
    """Pass the backend's answer to the client (see the module docstring); raises
    :class:`UpstreamBroke` when it fails before anything was sent."""
    named = {t.strip().lower() for k, v in upstream.headers if k.lower() == "connection"
             for t in v.split(",")}
    headers: CIMultiDict[str] = CIMultiDict(
        (k, v) for k, v in upstream.headers
        if (lk := k.lower()) not in _DROP_RESPONSE and lk not in named
    )
    length = upstream.content_length
    if length is not None and length <= BUFFER_LIMIT:
        try:
            if read_timeout is None:
                data = await upstream.read()
            else:
                data = b"".join([c async for c in _chunks(upstream, read_timeout)])
        except UpstreamError as exc:
            raise UpstreamBroke(str(exc)) from exc
        return web.Response(status=upstream.status, reason=upstream.reason or None,
                            body=data, headers=headers)
    response = web.StreamResponse(status=upstream.status, reason=upstream.reason or None,
                                  headers=headers)
    if length is not None:
        response.content_length = length
    await response.prepare(request)
    async for chunk in _chunks(upstream, read_timeout):
        await response.write(chunk)
    await response.write_eof()
    return response


Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


async def start_server(handler: Handler, addresses: Iterable[tuple[str, int]],
                       ) -> tuple[web.ServerRunner, list[int]]:
    """Listen on every ``(host, port)`` (port 0: a free one) with aiohttp's low-level
    server (no router, no access log, request bodies up to 64 MiB); returns the runner
    and the ports bound, in order. The caller cleans the runner up."""
    loop = asyncio.get_running_loop()

    def make_request(message: Any, payload: Any, protocol: Any, writer: Any,
                     task: Any) -> web.BaseRequest:
        return web.BaseRequest(message, payload, protocol, writer, task, loop,
                               client_max_size=MAX_BODY)

    server = web.Server(handler, request_factory=make_request, handler_cancellation=True,
                        access_log=None)
    runner = web.ServerRunner(server, shutdown_timeout=2.0)
    ports: list[int] = []
    try:
        await runner.setup()
        for host, port in addresses:
            site = web.TCPSite(runner, host, port)
            await site.start()
            ports.append(int(runner.addresses[-1][1]))
    except BaseException:
        await runner.cleanup()
        raise
    return runner, ports
