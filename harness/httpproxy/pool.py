"""A lean HTTP/1.1 client from an ingress to its backends: pooled keep-alive connections
(asyncio), used by both ingresses (the emulator's and the upstream cluster's Knative one).

aiohttp's client costs several times more CPU per request than the model server it
calls, which halves the emulated cluster's throughput on a small machine; an ingress
only needs plain HTTP/1.1 to local addresses, so this module writes the request line itself
and reads status, headers and a ``Content-Length``, chunked or read-to-close body.

Errors the ingress retries on another pod: :class:`ConnectFailed` (refused, unreachable,
connect timeout) and :class:`UpstreamClosed` (the pod closed the connection before any
byte of an answer). A reused keep-alive connection that turns out closed is replaced by
a fresh one transparently (nothing was answered on it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

Address = tuple[str, int]
_NO_BODY_STATUS = frozenset({204, 304})
_MAX_HEAD = 64 << 10


class UpstreamError(Exception):
    pass


class ConnectFailed(UpstreamError):
    pass


class UpstreamClosed(UpstreamError):
    pass


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


class UpstreamResponse:
    """Status, headers and body of one answer; call :meth:`release` when done with it."""

    def __init__(self, pool: UpstreamPool, addr: Address, conn: _Conn, status: int,
                 reason: str, headers: list[tuple[str, str]], length: int | None,
                 chunked: bool, keep_alive: bool) -> None:
        self._pool = pool
        self._addr = addr
        self._conn: _Conn | None = conn
        self.status = status
        self.reason = reason
        self.headers = headers
        self.content_length = length
        self._chunked = chunked
        self._keep_alive = keep_alive
        self._done = length == 0 and not chunked

    async def read(self) -> bytes:
        return b"".join([c async for c in self.iter_chunks()])

    async def iter_chunks(self, size: int = 1 << 16) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None or self._done:
            return
        reader = conn.reader
        try:
            if self._chunked:
                while True:
                    line = await reader.readuntil(b"\r\n")
                    n = int(line.split(b";", 1)[0].strip(), 16)
                    if n == 0:
                        while (await reader.readuntil(b"\r\n")) != b"\r\n":
                            pass  # trailers
                        break
                    data = await reader.readexactly(n)
                    await reader.readexactly(2)
                    yield data
            elif self.content_length is not None:
                left = self.content_length
                while left > 0:
                    data = await reader.readexactly(min(left, size)) if left <= size else \
                        await reader.read(size)
                    if not data:
                        raise asyncio.IncompleteReadError(b"", left)
                    left -= len(data)
                    yield data
            else:  # read to close
                self._keep_alive = False
                while data := await reader.read(size):
                    yield data
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                ConnectionError) as exc:
            self._keep_alive = False
            raise UpstreamError(f"answer broke off: {exc!r}") from exc
        self._done = True

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done and self._keep_alive:
            self._pool._put(self._addr, conn)
        else:
            self._pool._drop(conn)


class UpstreamPool:
    """Idle keep-alive connections per (ip, port)."""

    def __init__(self, connect_timeout: float = 2.0, max_idle_per_host: int = 256) -> None:
        self.connect_timeout = connect_timeout
        self.max_idle_per_host = max_idle_per_host
        self._idle: dict[Address, list[_Conn]] = {}
        self._all: set[_Conn] = set()
        self._closed = False

    def _put(self, addr: Address, conn: _Conn) -> None:
        idle = self._idle.setdefault(addr, [])
        if self._closed or conn.reader.at_eof() or len(idle) >= self.max_idle_per_host:
            self._drop(conn)
        else:
            idle.append(conn)

    def _drop(self, conn: _Conn) -> None:
        self._all.discard(conn)
        conn.close()

    async def _connect(self, addr: Address) -> _Conn:
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(addr[0], addr[1], limit=_MAX_HEAD)
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(f"cannot connect to {addr[0]}:{addr[1]}: {exc!r}") from exc
        conn = _Conn(reader, writer)
        self._all.add(conn)
        return conn

    def _take_idle(self, addr: Address) -> _Conn | None:
        idle = self._idle.get(addr)
        while idle:
            conn = idle.pop()
            if not conn.reader.at_eof() and not conn.writer.is_closing():
                return conn
            self._drop(conn)
        return None

    async def request(self, addr: Address, method: str, target: str,
                      headers: Iterable[tuple[str, str]], body: bytes) -> UpstreamResponse:
        """Send one request; the answer's head is read, its body is left to the caller."""
        if self._closed:
            raise ConnectFailed("upstream pool is closed")
        head = [f"{method} {target} HTTP/1.1\r\n"]
        head += [f"{k}: {v}\r\n" for k, v in headers]
        if body or method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
            head.append(f"Content-Length: {len(body)}\r\n")
        head.append("\r\n")
        payload = "".join(head).encode("latin-1") + body
        conn = self._take_idle(addr)
        if conn is not None:
            try:
                return await self._exchange(addr, conn, method, payload)
            except UpstreamClosed:
                pass  # a stale keep-alive connection: try once on a fresh one
        return await self._exchange(addr, await self._connect(addr), method, payload)

    async def _exchange(self, addr: Address, conn: _Conn, method: str,
                        payload: bytes) -> UpstreamResponse:
        try:
            conn.writer.write(payload)
            head = await conn.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            self._drop(conn)
            if exc.partial:
                raise UpstreamError("pod closed the connection mid-answer") from exc
            raise UpstreamClosed(f"{addr[0]}:{addr[1]} closed the connection") from exc
        except ConnectionError as exc:
            self._drop(conn)
            raise UpstreamClosed(f"{addr[0]}:{addr[1]}: {exc!r}") from exc
        except BaseException:
            self._drop(conn)
            raise
        try:
            lines = head[:-4].decode("latin-1").split("\r\n")
            version, code, *rest = lines[0].split(" ", 2)
            status = int(code)
            headers: list[tuple[str, str]] = []
            length: int | None = None
            chunked = False
            keep_alive = version == "HTTP/1.1"
            for line in lines[1:]:
                name, _, value = line.partition(":")
                value = value.strip()
                lname = name.lower()
                if lname == "content-length":
                    length = int(value)
                elif lname == "transfer-encoding":
                    chunked = "chunked" in value.lower()
                elif lname == "connection":
                    keep_alive = "close" not in value.lower() and (
                        keep_alive or "keep-alive" in value.lower())
                headers.append((name, value))
        except (ValueError, IndexError) as exc:
            self._drop(conn)
            raise UpstreamError(f"bad answer from {addr[0]}:{addr[1]}: {head[:200]!r}") from exc
        if method == "HEAD" or status in _NO_BODY_STATUS or 100 <= status < 200:
            length, chunked = 0, False
        if chunked:
            length = None
        return UpstreamResponse(self, addr, conn, status, rest[0] if rest else "", headers,
                                length, chunked, keep_alive)

    async def close(self) -> None:
        self._closed = True
        conns = list(self._all)
        self._all.clear()
        self._idle.clear()
        for conn in conns:
            conn.close()
        for conn in conns:
            try:
                await conn.writer.wait_closed()
            except (OSError, asyncio.CancelledError):
                pass
