"""Open-loop arrivals inside the Locust child (imports gevent: child only).

:class:`ArrivalDispatcher` sends the profile's arrivals at their due times
(:func:`harness.load.shapes.arrival_times`), each in its own greenlet, so a slow
response never delays the next arrival (no coordinated omission). At most
``max_in_flight`` requests are in flight per process; an arrival beyond that is recorded
as ``not sent`` instead of being queued. With N load processes, process ``i`` takes
arrivals ``i, i+N, i+2N, ...`` of one shared schedule, aligned on the run's origin time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import gevent
from gevent.pool import Pool

from harness.load.child.sink import RecordSink
from harness.load.profile import LoadProfile
from harness.load.shapes import arrival_times


class ArrivalDispatcher:
    """Plays the open-loop part of ``profile`` from ``origin`` (epoch seconds)."""

    def __init__(
        self,
        profile: LoadProfile,
        origin: float,
        send: Callable[[float], None],
        sink: RecordSink,
        index: int = 0,
        stride: int = 1,
    ) -> None:
        self.profile = profile
        self.origin = origin
        self.send = send
        self.sink = sink
        self.index = index
        self.stride = stride
        self.pool = Pool(profile.max_in_flight)
        self.dispatched = 0
        self.dropped = 0
        self.max_lag = 0.0
        self.greenlet: gevent.Greenlet | None = None

    @property
    def in_flight(self) -> int:
        return len(self.pool)

    @property
    def finished(self) -> bool:
        """All arrivals dispatched (or the dispatcher stopped) and none in flight."""
        return (self.greenlet is None or self.greenlet.dead) and len(self.pool) == 0

    def start(self) -> None:
        self.greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        for due_rel in arrival_times(self.profile, self.index, self.stride):
            due = self.origin + due_rel
            wait = due - time.time()
            if wait > 0:
                gevent.sleep(wait)
            else:
                self.max_lag = max(self.max_lag, -wait)
            if self.pool.full():
                self.dropped += 1
                self.sink.not_sent(due, f"{self.profile.max_in_flight} requests in flight")
                continue
            self.pool.spawn(self.send, due)
            self.dispatched += 1

    def stop(self, drain_timeout: float) -> None:
        """Stop dispatching; wait up to ``drain_timeout`` for requests in flight."""
        if self.greenlet is not None:
            self.greenlet.kill(block=True)
        self.pool.join(timeout=drain_timeout)
        self.pool.kill(block=True)
