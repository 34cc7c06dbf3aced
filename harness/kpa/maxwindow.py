"""Sliding maximum over tick slots: the scale-down-delay window (``knative-kpa.md`` §6 step 7).

Knative keeps the decider's recommendations in a window of ``ceil(delay / 2 s)`` slots
(``pkg/autoscaler/aggregation/max/timewindow.go``, ``window.go``); a recommendation made
at time t lands in slot ``floor(t / 2 s)``, and the window's value is the largest
recommendation of the last ``size`` slots. With a 60 s delay (30 slots) a value recorded
at t = 16 s is still in force at t = 74 s and gone at t = 76 s. Two recordings in one slot
(a poke between ticks) keep the larger.

Implemented as a descending monotonic deque, so a record is amortised O(1).
"""

from __future__ import annotations

import math
from collections import deque

from harness.params import TICK_INTERVAL

__all__ = ["MaxWindow"]


class MaxWindow:
    """Maximum of the values recorded in the last ``size`` slots of ``granularity`` seconds."""

    __slots__ = ("size", "granularity", "_q")

    def __init__(self, duration: float, granularity: float = TICK_INTERVAL) -> None:
        if duration <= 0:
            raise ValueError(f"duration must be > 0, got {duration}")
        self.granularity = granularity
        self.size = math.ceil(duration / granularity)
        self._q: deque[tuple[int, int]] = deque()

    def record(self, now: float, value: int) -> None:
        """Record ``value`` in the slot of ``now``; older, smaller values can never win again."""
        index = int(now // self.granularity)
        q = self._q
        while q and q[-1][1] <= value:
            q.pop()
        q.append((index, value))
        oldest = index - self.size
        while q[0][0] <= oldest:
            q.popleft()

    def current(self) -> int:
        """The window's maximum (0 when nothing was recorded)."""
        return self._q[0][1] if self._q else 0
