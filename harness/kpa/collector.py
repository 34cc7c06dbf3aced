"""One revision's metric collection: the stable and panic buckets of the scaling metric.

Mirrors ``collection`` in ``pkg/autoscaler/metrics/collector.go`` (``knative-kpa.md`` §5):
each observation of the revision-wide total (scraped pods plus activator reports) is
added into both windows, and the decider reads both averages at "now".

Simplification: Knative keeps concurrency and rps buckets side by side; the model keeps
only the metric the decider scales on (``KPAParams.metric``).
"""

from __future__ import annotations

from harness.kpa.aggregation import Buckets, make_buckets
from harness.params import KPAParams

__all__ = ["Collection"]


class Collection:
    """Stable- and panic-window buckets of one revision's scaling metric."""

    __slots__ = ("stable", "panic", "scraped")

    def __init__(self, params: KPAParams) -> None:
        algorithm = params.metric_aggregation_algorithm
        self.stable: Buckets = make_buckets(algorithm, params.stable_window)
        self.panic: Buckets = make_buckets(algorithm, params.panic_window)
        self.scraped = params.target_burst_capacity != -1
        """False when TBC = -1: the Metric has no scrape target, only the activator reports."""

    def update(self, params: KPAParams, now: float) -> None:
        """A changed Metric spec (``collection.updateMetric``): both windows resized in
        place, keeping their newest buckets. The algorithm stays the one chosen at
        creation, and so does whether the revision is scraped."""
        self.stable.resize(params.stable_window, now)
        self.panic.resize(params.panic_window, now)

    def record(self, now: float, value: float) -> None:
        """Add one observation of the revision-wide total at ``now`` into both windows."""
        self.stable.record(now, value)
        self.panic.record(now, value)

    def stable_and_panic(self, now: float) -> tuple[float, float] | None:
        """``(S, P)`` at ``now``; None for ``ErrNoData``.

        No data means: the revision is scraped and nothing was written for more than a
        stable window (``StableAndPanicConcurrency``). The decider then returns an invalid
        result and the previous decision stays.
        """
        if self.scraped and self.stable.is_empty(now):
            return None
        return self.stable.average(now), self.panic.average(now)
