"""Per-second concurrency metering of one revision, like queue-proxy's and the activator's reports.

:class:`ConcurrencyMeter` keeps the number of requests in flight and integrates it over
time. Every reporting period (1 s, aligned to whole seconds of the injected clock) it
closes a :class:`Stat`: the time-weighted average of in-flight requests over the period,
the requests that arrived in it, and the same two numbers for the part of the traffic
that took the activator path ("proxied"). Periods are closed lazily, on the next event
or read, so an idle meter costs nothing; at most ``max_stats`` closed periods are kept.

The meter is a pure state machine on the clock it is given (no I/O, no tasks), so it is
tested with a fake clock.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

PERIOD = 1.0  # queue-proxy's reportingPeriod and the activator's reportInterval


@dataclass(frozen=True)
class Stat:
    """One closed reporting period of one revision.

    ``time`` is the end of the period on the ingress's clock (``time.monotonic`` unless
    another clock was injected). ``average_concurrency`` is the time-weighted average of
    all the revision's requests in flight at the ingress (waiting in the activator's
    buffer, waiting for a containerConcurrency slot, or being served by a pod);
    ``proxied_concurrency`` is the part of it from requests that took the activator path.
    So ``average_concurrency - proxied_concurrency`` is what scraping the pods yields after
    Knative subtracts proxied requests, and ``proxied_*`` is what the activator reports:
    record ``average_concurrency`` / ``request_count`` as the revision total when the
    revision has pods, and only the ``proxied_*`` pair when it has none (Knative records
    nothing from a scrape of zero pods). ``buffered`` and ``queued`` are the requests
    waiting at the end of the period, in the activator and for a pod's concurrency slot
    respectively; ``pods`` is the number of ready endpoints then.
    """

    time: float
    average_concurrency: float
    request_count: int
    proxied_concurrency: float
    proxied_request_count: int
    buffered: int = 0
    queued: int = 0
    pods: int = 0


Gauges = Callable[[], tuple[int, int, int]]  # (buffered, queued, pods) right now


class ConcurrencyMeter:
    """Time-weighted in-flight accounting for one revision, in ``period``-second buckets."""

    def __init__(
        self,
        clock: Callable[[], float],
        gauges: Gauges | None = None,
        *,
        period: float = PERIOD,
        max_stats: int = 3600,
    ) -> None:
        self._clock = clock
        self._gauges = gauges or (lambda: (0, 0, 0))
        self.period = period
        self.in_flight = 0
        self.proxied_in_flight = 0
        now = clock()
        self._end = (math.floor(now / period) + 1) * period
        self._last = now
        self._area = 0.0
        self._proxied_area = 0.0
        self._count = 0
        self._proxied_count = 0
        self._stats: deque[Stat] = deque(maxlen=max_stats)

    def advance(self) -> float:
        """Integrate up to now, closing every period that ended; return now.

        Call it *before* changing anything the period's figures depend on (in-flight
        counts, waiters, endpoints): the state since the last call is what held until now.
        """
        now = self._clock()
        if now < self._last:  # a clock that went backwards: integrate nothing
            return now
        if now >= self._end:
            self._close(self._end)
            gap = math.floor((now - self._end) / self.period)
            if gap > self._stats.maxlen:  # long idle: skip periods that would be dropped
                self._end += (gap - self._stats.maxlen) * self.period
                self._last = self._end - self.period
            while now >= self._end:
                self._close(self._end)
        self._add(now)
        return now

    def _add(self, until: float) -> None:
        dt = until - self._last
        if dt > 0:
            self._area += self.in_flight * dt
            self._proxied_area += self.proxied_in_flight * dt
        self._last = until

    def _close(self, end: float) -> None:
        self._add(end)
        buffered, queued, pods = self._gauges()
        self._stats.append(
            Stat(
                time=end,
                average_concurrency=self._area / self.period,
                request_count=self._count,
                proxied_concurrency=self._proxied_area / self.period,
                proxied_request_count=self._proxied_count,
                buffered=buffered,
                queued=queued,
                pods=pods,
            )
        )
        self._area = self._proxied_area = 0.0
        self._count = self._proxied_count = 0
        self._end = end + self.period

    def arrive(self, proxied: bool, *, counted: bool = True) -> None:
        """A request arrived. ``counted=False`` leaves it out of the request count (it was
        already reported on its own, like the activator's immediate first stat)."""
        self.advance()
        self.in_flight += 1
        if counted:
            self._count += 1
        if proxied:
            self.proxied_in_flight += 1
            if counted:
                self._proxied_count += 1

    def depart(self, proxied: bool) -> None:
        """A request finished (answered, failed or abandoned)."""
        self.advance()
        self.in_flight -= 1
        if proxied:
            self.proxied_in_flight -= 1

    def take(self) -> list[Stat]:
        """Close the periods that ended and drain them, oldest first."""
        self.advance()
        out = list(self._stats)
        self._stats.clear()
        return out
