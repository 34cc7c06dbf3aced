"""Conditions on frames recorded so far, for ``timeline.wait(...)`` in the suites (how
long they wait comes from the reference model: :mod:`harness.suite.plan`)."""

from __future__ import annotations

from collections.abc import Callable

from harness.observe.frames import Frames


def pods_now(frames: Frames) -> int:
    """Pods that exist and are not terminating, at the last recorded change (0 if none)."""
    return 0 if frames.ready.empty else int(frames.ready["pods"].iloc[-1])


def ready_now(frames: Frames) -> int:
    return 0 if frames.ready.empty else int(frames.ready["ready"].iloc[-1])


def no_pods(frames: Frames) -> bool:
    """Scaled to zero: no pod left that is not terminating (and at least one recorded)."""
    return not frames.ready.empty and pods_now(frames) == 0


def scaled_to_at_most(n: int) -> Callable[[Frames], bool]:
    """Scaled down to ``n``: at most ``n`` pods exist that are not terminating. Pods that
    exist but are not Ready yet count: on a real kubelet a new pod's Ready can lag its
    start by a readiness period (queue-proxy's probe runs every 10 s), so "at most n
    Ready" also holds in the middle of a scale-up."""
    def pred(frames: Frames) -> bool:
        return not frames.ready.empty and pods_now(frames) <= n

    return pred
