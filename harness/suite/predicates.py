"""Conditions on frames recorded so far, for ``timeline.wait(...)`` in the suites, and
the durations the suites wait for (from the effective knobs)."""

from __future__ import annotations

from collections.abc import Callable

from harness.observe.frames import Frames
from harness.params import KPAParams


def to_zero_s(p: KPAParams) -> float:
    """Nominal seconds from the last request to zero pods (from one pod): stable window +
    scale-down delay + max(grace, retention)."""
    return (p.stable_window + p.scale_down_delay
            + max(p.scale_to_zero_grace_period, p.scale_to_zero_pod_retention_period))


def pods_now(frames: Frames) -> int:
    """Pods that exist and are not terminating, at the last recorded change (0 if none)."""
    return 0 if frames.ready.empty else int(frames.ready["pods"].iloc[-1])


def ready_now(frames: Frames) -> int:
    return 0 if frames.ready.empty else int(frames.ready["ready"].iloc[-1])


def no_pods(frames: Frames) -> bool:
    """Scaled to zero: no pod left that is not terminating (and at least one recorded)."""
    return not frames.ready.empty and pods_now(frames) == 0


def ready_at_most(n: int) -> Callable[[Frames], bool]:
    def pred(frames: Frames) -> bool:
        return not frames.ready.empty and ready_now(frames) <= n

    return pred
