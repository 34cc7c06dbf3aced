"""Claim 3, panic mode: a burst above the panic threshold scales up within the panic
window (faster than stable mode, never down while panicking); a ramp that stays below
the threshold does not panic.

Both start on a revision older than its panic window (:func:`harness.suite.plan.warm`),
the state in which the check reckons the panic-window average."""

from __future__ import annotations

import pytest

from harness.checks import check_panic
from harness.suite import plan

BURST = plan.Service("cpu-small", patch={"spec": {"predictor": {"minReplicas": 1}}})
RAMP = plan.Service("cpu-small", patch={"spec": {"predictor": {"minReplicas": 3}}})


def _needs(service: plan.Service, load: str):
    return pytest.mark.needs_time(
        lambda p: plan.needs_s(plan.warm(plan.isvc_params(p, service)).deadline_s,
                               plan.load_s(load)))


@_needs(BURST, "burst")
def test_burst_enters_panic(deploy_isvc, load, timeline):
    isvc = deploy_isvc(BURST.source, **BURST.kwargs())
    timeline.start()
    timeline.hold(plan.warm(isvc.params.params), isvc=isvc)
    load("burst", isvc)
    frames = timeline.frames(isvc)
    timeline.check(check_panic(frames, isvc.params, timeline.records(), expect="burst"))


@_needs(RAMP, "ramp-below-panic")
def test_ramp_below_threshold_does_not_panic(deploy_isvc, load, timeline):
    isvc = deploy_isvc(RAMP.source, **RAMP.kwargs())
    timeline.start()
    timeline.hold(plan.warm(isvc.params.params), isvc=isvc)
    load("ramp-below-panic", isvc)
    frames = timeline.frames(isvc)
    timeline.check(check_panic(frames, isvc.params, timeline.records(), expect="ramp"))
