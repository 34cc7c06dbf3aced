"""The decider: one evaluation of Knative's autoscaler (``knative-kpa.md`` §6).

:meth:`Decider.scale` is ``Scale(now)`` of ``pkg/autoscaler/scaling/autoscaler.go``; time
is an argument, so the same object runs in virtual time (the simulation) or real time
(the emulator). One tick, in order:

1. ``R1 = max(1, R)`` from the ready pods ``R``.
2. ``S, P`` from the metric collection; no data -> an invalid result.
3. Rate bounds on ready pods: ``maxUp = ceil(up_rate x R1)``,
   ``maxDown = floor(R1 / down_rate)`` (0 when the revision is unreachable).
4. ``dspc = ceil(S/T)``, ``dppc = ceil(P/T)``, each clamped into ``[maxDown, maxUp]``.
5. activation-scale raises a non-zero stable/panic count to at least its value.
6. Panic: ``dppc / R1 >= threshold`` starts or extends panic; panic ends at the first
   tick not over the threshold that is more than a stable window after the last one that
   was. While panicking the result is ``max(stable, panic)`` ratcheted by
   ``maxPanicPods`` (panic never scales down).
7. scale-down-delay: the result goes through a sliding max of the last ``delay`` seconds
   (only when reachable, as since v1.18).
8. ``EBC = floor(R x TOT - TBC - P)`` for TBC > 0, 0 for TBC = 0, -1 for TBC = -1.

A decider created with ``R > 1`` starts in panic with ``maxPanicPods = R`` (it keeps the
current scale for at least a stable window while its history rebuilds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from harness.kpa.maxwindow import MaxWindow
from harness.params import KPAParams

__all__ = ["Decider", "MetricSource", "ScaleResult", "initial_ebc"]


class MetricSource(Protocol):
    """What the decider reads: :class:`harness.kpa.collector.Collection` or a test stub."""

    def stable_and_panic(self, now: float) -> tuple[float, float] | None:
        """``(S, P)`` at ``now``, or None when there is no data."""
        ...


@dataclass(frozen=True, slots=True)
class ScaleResult:
    """One tick's outcome: Knative's ``ScaleResult`` plus what the tick observed."""

    desired: int
    """DesiredPodCount: the recommendation (no min/max bounds, no scale-to-zero gates)."""
    ebc: int
    """ExcessBurstCapacity; negative puts the activator in the path."""
    valid: bool
    """False when there was no data; then the previous decision stays."""
    stable: float = 0.0
    """S: stable-window average of the revision-wide total."""
    panic: float = 0.0
    """P: panic-window average of the revision-wide total."""
    panic_mode: bool = False


def initial_ebc(params: KPAParams) -> int:
    """EBC published when a decider is created: ``initialScale x TOT - TBC`` (or TBC if <= 0).

    Truncated toward zero, not floored: ``multiscaler.go`` converts with ``int32(...)``,
    so -0.5 publishes 0 (activator out of the path) where the tick's EBC floors to -1.
    """
    tbc = params.target_burst_capacity
    if tbc <= 0:
        return int(tbc)
    return math.trunc(params.initial_scale * params.total_per_pod - tbc)


class Decider:
    """Per-revision decider state: panic time, ``maxPanicPods`` and the delay window."""

    def __init__(
        self,
        params: KPAParams,
        metrics: MetricSource,
        *,
        now: float,
        ready: int,
        reachable: bool = True,
    ) -> None:
        self.metrics = metrics
        self.reachable = reachable
        self.delay_window: MaxWindow | None = (
            MaxWindow(params.scale_down_delay) if params.scale_down_delay > 0 else None
        )
        # Start-up panic: a decider created over more than one ready pod keeps that scale.
        self.panic_time: float | None = now if ready > 1 else None
        self.max_panic_pods = ready
        self.update(params)

    def update(self, params: KPAParams) -> None:
        """A new ``DeciderSpec`` for the next tick (``autoscaler.Update``).

        Everything the spec carries takes effect at the next decision: rates, targets,
        TBC, panic threshold, the stable window that ends panic, activation scale. Panic
        state (``panicTime``, ``maxPanicPods``) carries over, and so does the delay
        window: upstream builds it once in ``New`` from the spec of that moment, so a
        changed ``scale-down-delay`` reaches only deciders created afterwards.
        """
        self.params = params
        self._target = params.target_per_pod
        self._total = params.total_per_pod
        self._tbc = params.target_burst_capacity
        self._up = params.max_scale_up_rate
        self._down = params.max_scale_down_rate
        self._threshold = params.panic_threshold
        self._stable_window = params.stable_window
        self._activation = params.activation_scale

    @property
    def panicking(self) -> bool:
        return self.panic_time is not None

    def scale(self, now: float, ready: int) -> ScaleResult:
        """Evaluate one tick at ``now`` with ``ready`` ready pods."""
        observed = self.metrics.stable_and_panic(now)
        if observed is None:
            return ScaleResult(-1, 0, False, 0.0, 0.0, self.panic_time is not None)
        s, p = observed
        r1 = ready if ready > 1 else 1
        max_up = math.ceil(self._up * r1)
        max_down = math.floor(r1 / self._down) if self.reachable else 0
        t = self._target
        dspc = math.ceil(s / t)
        dppc = math.ceil(p / t)
        stable_d = min(max(dspc, max_down), max_up)
        panic_d = min(max(dppc, max_down), max_up)
        act = self._activation
        if act > 1:
            if dspc > 0 and act > stable_d:
                stable_d = act
            if dppc > 0 and act > panic_d:
                panic_d = act

        over = dppc / r1 >= self._threshold
        if over:
            self.panic_time = now
        elif self.panic_time is not None and self.panic_time + self._stable_window < now:
            self.panic_time = None
            self.max_panic_pods = 0

        desired = stable_d
        if self.panic_time is not None:
            if panic_d > desired:
                desired = panic_d
            if desired > self.max_panic_pods:
                self.max_panic_pods = desired
            desired = self.max_panic_pods

        if self.delay_window is not None and self.reachable:
            self.delay_window.record(now, desired)
            desired = self.delay_window.current()

        tbc = self._tbc
        if tbc == 0:
            ebc = 0
        elif tbc > 0:
            ebc = math.floor(ready * self._total - tbc - p)
        else:
            ebc = -1
        return ScaleResult(desired, ebc, True, s, p, self.panic_time is not None)
