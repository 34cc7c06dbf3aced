"""One-second metric buckets and their window averages (``knative-kpa.md`` §5).

Knative records every observation of the revision-wide total into a 1 s bucket of two
windows (stable and panic) and the decider reads one average per window per tick
(``pkg/autoscaler/aggregation/bucketing.go``). Two averages exist:

* :class:`LinearBuckets` (the default): a plain mean over buckets with Knative's
  missing-data rules. Worked through for a 4 s window written at t = 0..3 with
  ``[10, 10, 5, 5]``: at t = 3 the mean is 30/4 = 7.5; at t = 4 (one trailing second
  without a write) the trailing bucket is dropped, so 20/3 = 6.666667; at t >= 7 the
  window holds no write and the average is 0.
* :class:`WeightedBuckets` (``weighted-exponential``): ``sum(a(1-a)^i * v_i)``, newest
  bucket first, ``a = max(1 - 0.0001^(1/n), 0.2)``; missing buckets count as zeros.
  Knative's own example, ``[10, 10, 5, 5]`` with a = 0.6 and the two 5s newest, gives
  0.6*5 + 0.24*5 + 0.096*10 + 0.0384*10 = 5.544.

Times are seconds; a bucket is ``floor(t)``. Writes must come in time order (the
simulation never writes into the past). The running window total makes a write and a
read O(1) apart from clearing the buckets of a gap, which is amortised O(1) per second.
"""

from __future__ import annotations

import math

from harness.params import BUCKET_SIZE

__all__ = ["Buckets", "LinearBuckets", "WeightedBuckets", "make_buckets", "round6"]


def round6(value: float) -> float:
    """Round to 6 decimals, halves away from zero, like Go's ``math.Round(v*1e6)/1e6``."""
    r = math.floor(abs(value) * 1e6 + 0.5) / 1e6
    return r if value >= 0 else -r


class Buckets:
    """A ring of 1 s buckets covering ``window`` seconds, with Knative's write rules.

    * The first write, and a write after no write for >= one window, clears every
      bucket and starts a fresh partial window (``first`` = that second).
    * A write after a shorter gap zeroes the buckets of the gap (interior gaps count as
      zeros once a later write arrives).
    * Several writes into the same second add up.
    """

    __slots__ = ("window", "n", "_buckets", "_total", "_first", "_last")

    def __init__(self, window: float) -> None:
        if BUCKET_SIZE != 1.0:  # pragma: no cover - a Knative constant
            raise ValueError("buckets assume 1 s granularity")
        if window < 1:
            raise ValueError(f"window must be at least 1 s, got {window}")
        self.window = float(window)
        self.n = math.ceil(window / BUCKET_SIZE)
        self._buckets = [0.0] * self.n
        self._total = 0.0
        self._first: int | None = None
        self._last: int | None = None

    @property
    def first_write(self) -> int | None:
        """Second of the first write of the current run of data (None: never written)."""
        return self._first

    @property
    def last_write(self) -> int | None:
        """Second of the latest write (None: never written)."""
        return self._last

    def record(self, now: float, value: float) -> None:
        """Add ``value`` into the bucket of second ``floor(now)``."""
        b = int(now // 1)
        last = self._last
        buckets = self._buckets
        n = self.n
        if last is None or b - last >= self.window:
            for i in range(n):
                buckets[i] = 0.0
            self._total = 0.0
            self._first = b
            self._last = b
        elif b != last:
            if b < last:
                raise ValueError(f"write at {b} s is older than the last write at {last} s")
            total = self._total
            for i in range(last + 1, b + 1):
                idx = i % n
                total -= buckets[idx]
                buckets[idx] = 0.0
            self._total = total
            self._last = b
        buckets[b % n] += value
        self._total += value

    def resize(self, window: float, now: float) -> None:
        """Change the window, keeping the newest buckets (``ResizeWindow`` in
        ``bucketing.go``): a config change reaches a running collection this way.

        With a write within the old window, the newest ``min(old, new)`` buckets are
        copied and the first write becomes ``last - (old buckets - 1)`` (as upstream);
        otherwise the data is dropped.
        """
        if float(window) == self.window:
            return
        if window < 1:
            raise ValueError(f"window must be at least 1 s, got {window}")
        n_new = math.ceil(window / BUCKET_SIZE)
        new = [0.0] * n_new
        total = 0.0
        last = self._last
        if last is not None and int(now // 1) - last <= self.window:
            n_old = self.n
            idx = last
            for _ in range(min(n_new, n_old)):
                value = self._buckets[idx % n_old]
                new[idx % n_new] = value
                total += value
                idx -= 1
            self._first = last - (n_old - 1)
        else:
            self._first = None
            self._last = None
        self.window = float(window)
        self.n = n_new
        self._buckets = new
        self._total = total

    def is_empty(self, now: float) -> bool:
        """True when nothing was written for more than a window (``IsEmpty``)."""
        return self._last is None or int(now // 1) - self._last > self.window

    def average(self, now: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


class LinearBuckets(Buckets):
    """Plain mean over the window's buckets with Knative's missing-data rules."""

    __slots__ = ()

    def average(self, now: float) -> float:
        """Window average at ``now`` (``WindowAverage`` in ``bucketing.go``).

        * No trailing gap: total / number of buckets since the first write (at most n).
        * Trailing gap of d seconds (0 < d < window): the d newest buckets are dropped,
          total of the rest / min(buckets since first write, n - d).
        * No write for >= a window: 0.
        """
        last = self._last
        if last is None:
            return 0.0
        b = int(now // 1)
        d = b - last
        if d <= 0:
            nb = min(last - self._first + 1, self.n)  # type: ignore[operator]
            return round6(self._total / nb)
        if d < self.window:
            buckets = self._buckets
            n = self.n
            ret = self._total
            for i in range(last + 1, b + 1):
                ret -= buckets[i % n]
            nb = min(last - self._first + 1, n - d)  # type: ignore[operator]
            return round6(ret / nb)
        return 0.0


class WeightedBuckets(Buckets):
    """Exponentially weighted sum of the window's buckets, newest first."""

    __slots__ = ("alpha", "_weights")

    def __init__(self, window: float) -> None:
        super().__init__(window)
        self._smoothing()

    def _smoothing(self) -> None:
        self.alpha = max(1.0 - 0.0001 ** (1.0 / self.n), 0.2)
        self._weights = [self.alpha * (1.0 - self.alpha) ** i for i in range(self.n)]

    def resize(self, window: float, now: float) -> None:
        super().resize(window, now)
        self._smoothing()

    def average(self, now: float) -> float:
        """``sum(a(1-a)^i * v(now - i))`` over the window; unwritten seconds are 0.

        O(n) per read: the weighted variant is opt-in and not on the benchmark's path.
        """
        last = self._last
        if last is None:
            return 0.0
        b = int(now // 1)
        if b - last >= self.window:
            return 0.0
        buckets = self._buckets
        n = self.n
        first = self._first
        total = 0.0
        for i, w in enumerate(self._weights):
            sec = b - i
            if sec > last:
                continue
            if sec < first:  # type: ignore[operator]
                break
            total += w * buckets[sec % n]
        return total


def make_buckets(algorithm: str, window: float) -> Buckets:
    """Buckets for ``metric-aggregation-algorithm`` (``linear`` or ``weighted-exponential``)."""
    if algorithm == "linear":
        return LinearBuckets(window)
    if algorithm in ("weighted-exponential", "weightedExponential"):
        return WeightedBuckets(window)
    raise ValueError(f"unknown metric aggregation algorithm {algorithm!r}")
