"""Autoscaler parameter sets: every KPA knob of one revision, with the value in force.

:class:`KPAParams` is one frozen, flat record of every knob of Knative's pod
autoscaler (``knative-kpa.md`` §1-4), in internal units: durations in seconds,
percentages as fractions where Knative itself normalises them. It is what the
reference model (:mod:`harness.kpa`), the emulator's autoscaler and the checks read.

Field names follow the ConfigMap keys in snake_case. Derived values (panic window,
per-pod target ``T``, per-pod total ``TOT``) are properties, so they can never
disagree with the knobs they come from.

This module is a leaf: it imports nothing from the harness. Loading (profiles,
``config-autoscaler``, revision annotations, InferenceService manifests) and the
precedence annotation > ConfigMap > default live in :mod:`harness.resolve`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TICK_INTERVAL = 2.0
"""Seconds between decider evaluations; a constant since Knative v0.16 (``multiscaler.go``)."""

BUCKET_SIZE = 1.0
"""Seconds per metric bucket, and the scrape period (``config.go``, ``collector.go``)."""

RPS_TARGET_UTILIZATION = 0.7
"""Fixed utilization for the rps metric when no annotation overrides it."""

TARGET_MIN = 0.01
"""Smallest per-pod target Knative accepts (``autoscaling.TargetMin``)."""


@dataclass(frozen=True, slots=True)
class KPAParams:
    """Every knob of the KPA for one revision, as effective values.

    Defaults are Knative's own (``defaultConfig()`` in ``pkg/autoscaler/config``).
    """

    # --- config-autoscaler keys (revision annotations may override some) ---
    container_concurrency_target_percentage: float = 0.70
    """Target utilization as a fraction: 0.85 keeps 15 % headroom per pod."""
    container_concurrency_target_default: float = 100.0
    """Per-pod total concurrency when containerConcurrency is 0 (soft limit)."""
    requests_per_second_target_default: float = 200.0
    """Per-pod total rps for the rps metric."""
    target_burst_capacity: float = 211.0
    """Spare capacity kept before the activator leaves the path; 0 = only at zero, -1 = always."""
    stable_window: float = 60.0
    """Seconds averaged in stable mode (6 s to 1 h, whole seconds)."""
    panic_window_percentage: float = 10.0
    """Panic window as a percentage of the stable window (1 to 100)."""
    panic_threshold_percentage: float = 200.0
    """If 200, panic starts when the panic-window load needs twice the ready pods."""
    max_scale_up_rate: float = 1000.0
    """A tick may go up to ceil(rate x ready) pods."""
    max_scale_down_rate: float = 2.0
    """A tick may go down to floor(ready / rate) pods."""
    enable_scale_to_zero: bool = True
    scale_to_zero_grace_period: float = 30.0
    """Upper bound on waiting for the activator to be in the path before removing the last pod."""
    scale_to_zero_pod_retention_period: float = 0.0
    """Minimum seconds the last pod is kept after the PodAutoscaler goes Inactive."""
    scale_down_delay: float = 0.0
    """Seconds a lower recommendation must hold before it is applied (sliding max)."""
    pod_autoscaler_class: str = "kpa.autoscaling.knative.dev"
    activator_capacity: float = 100.0
    initial_scale: int = 1
    allow_zero_initial_scale: bool = False
    min_scale: int = 0
    max_scale: int = 0
    """0 means unlimited."""
    max_scale_limit: int = 0

    # --- per-revision only (annotations and the revision spec) ---
    metric: str = "concurrency"
    """``concurrency`` or ``rps``."""
    target: float | None = None
    """The ``autoscaling.knative.dev/target`` annotation: per-pod total, or None."""
    target_utilization_percentage: float | None = None
    """The ``target-utilization-percentage`` annotation as a fraction, or None."""
    activation_scale: int = 1
    """Floor on every non-zero decision (annotation only; 1 means none)."""
    metric_aggregation_algorithm: str = "linear"
    """``linear`` or ``weighted-exponential``."""
    container_concurrency: int = 0
    """The revision's containerConcurrency; 0 means unlimited."""

    # --- derived values ---
    @property
    def panic_window(self) -> float:
        """round(stable x pct / 100) to whole seconds, at least 1 s (``metric.go``).

        In Go's arithmetic: the product is taken in float64 nanoseconds and truncated to
        a whole ``time.Duration`` before ``Round(time.Second)``, so 125 s x 34.8 % is
        43.499999999 s and rounds to 43 s, not 44 s.
        """
        ns = math.trunc(self.stable_window * 1e9 * self.panic_window_percentage / 100.0)
        whole, rest = divmod(ns, 1_000_000_000)  # Duration.Round: halves away from zero
        return max(BUCKET_SIZE, float(whole + (1 if 2 * rest >= 1_000_000_000 else 0)))

    @property
    def panic_threshold(self) -> float:
        """Panic threshold as a factor (200 % -> 2.0)."""
        return self.panic_threshold_percentage / 100.0

    @property
    def utilization(self) -> float:
        """Target utilization in force for the chosen metric, as a fraction."""
        if self.target_utilization_percentage is not None:
            return self.target_utilization_percentage
        if self.metric == "rps":
            return RPS_TARGET_UTILIZATION
        return self.container_concurrency_target_percentage

    @property
    def total_per_pod(self) -> float:
        """``TOT``: per-pod total capacity of the scaling metric (``target.go``)."""
        if self.metric == "rps":
            return (
                self.target if self.target is not None else self.requests_per_second_target_default
            )
        tot = (
            float(self.container_concurrency)
            if self.container_concurrency > 0
            else self.container_concurrency_target_default
        )
        if self.target is not None:
            tot = (
                min(self.target, float(self.container_concurrency))
                if self.container_concurrency > 0
                else self.target
            )
        return tot

    @property
    def target_per_pod(self) -> float:
        """``T = max(0.01, TOT x u)``: the per-pod value the decider aims for."""
        return max(TARGET_MIN, self.total_per_pod * self.utilization)

    @property
    def stable_buckets(self) -> int:
        return math.ceil(self.stable_window / BUCKET_SIZE)

    @property
    def panic_buckets(self) -> int:
        return math.ceil(self.panic_window / BUCKET_SIZE)
