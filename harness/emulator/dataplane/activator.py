"""Per-revision request admission: the activator's buffer and queue-proxy's concurrency limit.

:class:`RevisionGate` holds a revision's ready pods (:class:`Pod`) and hands each request
one pod with a free slot. A pod takes at most ``container_concurrency`` requests at once
(0 = unlimited), like queue-proxy's breaker; among pods with a free slot the one with the
fewest requests in flight wins (ties rotate). A request that finds no free slot, or no
pod at all (scaled to zero), waits in one FIFO queue until a slot frees or endpoints
appear, up to a deadline (then :class:`ActivatorTimeout`, answered with 503 like
Knative's activator); at most ``max_waiting`` requests wait (then :class:`QueueFull`).

The gate also owns the revision's :class:`~harness.emulator.dataplane.concurrency.ConcurrencyMeter`
and tells it about every change of waiters and endpoints. asyncio only; no I/O here.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from harness.emulator.dataplane.concurrency import PERIOD, ConcurrencyMeter

BROKEN_COOLOFF = 1.0  # seconds a pod that refused a connection is skipped


class AdmissionError(Exception):
    """A request that will not get a pod; ``status`` is the HTTP answer."""

    status = 503


class ActivatorTimeout(AdmissionError):
    pass


class QueueFull(AdmissionError):
    pass


class GateClosed(AdmissionError):
    pass


@dataclass(eq=False)
class Pod:
    """One ready endpoint of a revision and its in-flight accounting."""

    name: str
    ip: str
    port: int
    in_flight: int = 0
    max_in_flight: int = 0  # high-water mark, for tests and debugging
    served: int = 0  # requests handed to this pod
    removed: bool = False  # no longer among the endpoints; in-flight requests finish
    broken_until: float = 0.0  # clock time until which new requests avoid it

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.name, self.ip, self.port)


@dataclass(eq=False)
class _Waiter:
    future: asyncio.Future[Pod]
    proxied: bool
    exclude: frozenset[tuple[str, str, int]] = field(default_factory=frozenset)


class RevisionGate:
    """Endpoints, slots, waiters and meter of one revision."""

    def __init__(
        self,
        namespace: str,
        name: str,
        *,
        clock: Callable[[], float],
        max_waiting: int = 10_000,
        period: float = PERIOD,
    ) -> None:
        self.namespace = namespace
        self.name = name
        self._clock = clock
        self.max_waiting = max_waiting
        self.pods: list[Pod] = []
        self.container_concurrency = 0
        self.activating = False  # the first request at zero was reported; cleared by endpoints
        self.proxy_mode = False  # activator in the path even with pods (SKS Proxy)
        self._waiters: deque[_Waiter] = deque()
        self._rr = 0
        self._closed = False
        self.meter = ConcurrencyMeter(clock, self._gauges, period=period)

    # ---- state -------------------------------------------------------------------------

    def _gauges(self) -> tuple[int, int, int]:
        buffered = sum(1 for w in self._waiters if w.proxied)
        return buffered, len(self._waiters) - buffered, len(self.pods)

    @property
    def has_endpoints(self) -> bool:
        return bool(self.pods)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def in_flight_by_pod(self) -> dict[str, int]:
        return {p.name: p.in_flight for p in self.pods}

    def set_endpoints(self, endpoints: Iterable[tuple[str, str, int]], cc: int) -> None:
        """Replace the ready pods (kept pods keep their counters) and the concurrency limit."""
        if cc < 0:
            raise ValueError(f"container_concurrency must be >= 0, got {cc}")
        self.meter.advance()
        old = {p.key: p for p in self.pods}
        new: list[Pod] = []
        for name, ip, port in endpoints:
            key = (name, ip, int(port))
            if any(p.key == key for p in new):
                continue
            new.append(old.pop(key, None) or Pod(name, ip, int(port)))
        for gone in old.values():
            gone.removed = True
        self.pods = new
        self.container_concurrency = cc
        if new:
            self.activating = False
        self._dispatch()

    def mark_broken(self, pod: Pod) -> None:
        pod.broken_until = self._clock() + BROKEN_COOLOFF

    # ---- admission ---------------------------------------------------------------------

    def _free(self, pod: Pod, now: float, exclude: frozenset[tuple[str, str, int]]) -> bool:
        cc = self.container_concurrency
        return (
            not pod.removed
            and (cc == 0 or pod.in_flight < cc)
            and pod.broken_until <= now
            and pod.key not in exclude
        )

    def _pick(self, exclude: frozenset[tuple[str, str, int]]) -> Pod | None:
        pods = self.pods
        n = len(pods)
        if n == 0:
            return None
        now = self._clock()
        best: Pod | None = None
        start = self._rr % n
        for i in range(n):
            pod = pods[(start + i) % n]
            if self._free(pod, now, exclude) and (best is None or pod.in_flight < best.in_flight):
                best = pod
        if best is not None:
            self._rr = start + 1
            best.in_flight += 1
            best.served += 1
            best.max_in_flight = max(best.max_in_flight, best.in_flight)
        return best

    async def acquire(
        self,
        deadline: float,
        *,
        proxied: bool,
        exclude: frozenset[tuple[str, str, int]] = frozenset(),
    ) -> Pod:
        """A pod with a slot taken for this request; wait (FIFO) until ``deadline``.

        ``deadline`` is on the event loop's clock. Call :meth:`release` with the pod.
        """
        if self._closed:
            raise GateClosed("ingress is shutting down")
        if not self._waiters:
            pod = self._pick(exclude)
            if pod is not None:
                return pod
        if len(self._waiters) >= self.max_waiting:
            raise QueueFull(
                f"activator queue for revision {self.namespace}/{self.name} is full "
                f"({self.max_waiting} requests waiting)"
            )
        loop = asyncio.get_running_loop()
        self.meter.advance()
        waiter = _Waiter(loop.create_future(), proxied, exclude)
        self._waiters.append(waiter)
        got = False
        try:
            async with asyncio.timeout_at(deadline):
                pod = await waiter.future
            got = True
            return pod
        except TimeoutError:
            raise ActivatorTimeout(
                f"no pod of revision {self.namespace}/{self.name} became available "
                "before the activator timeout"
            ) from None
        finally:
            fut = waiter.future
            if not got:
                if not fut.done():
                    fut.cancel()
                elif not fut.cancelled() and fut.exception() is None:
                    self.release(fut.result())  # a pod came in the instant we gave up
            if waiter in self._waiters:
                self.meter.advance()
                self._waiters.remove(waiter)

    def release(self, pod: Pod) -> None:
        """The request that held a slot on ``pod`` is done."""
        pod.in_flight -= 1
        if self._waiters:
            self._dispatch()

    def _dispatch(self) -> None:
        """Hand free slots to waiters, oldest first."""
        if not self._waiters:
            return
        self.meter.advance()
        keep: deque[_Waiter] = deque()
        blocked = False
        while self._waiters:
            w = self._waiters.popleft()
            if w.future.done():
                continue
            pod = None if blocked else self._pick(w.exclude)
            if pod is None:
                keep.append(w)
                if not w.exclude:
                    blocked = True  # no free slot at all: the rest keep waiting
                continue
            w.future.set_result(pod)
        self._waiters = keep

    def close(self) -> None:
        """Fail every waiter (ingress shutdown) and refuse new requests."""
        self._closed = True
        self.meter.advance()
        while self._waiters:
            w = self._waiters.popleft()
            if not w.future.done():
                w.future.set_exception(GateClosed("ingress is shutting down"))
