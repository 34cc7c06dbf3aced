"""Claim 3, panic mode: a burst above the panic threshold scales up within the panic
window (faster than stable mode, never down while panicking); a ramp that stays below
the threshold does not panic."""

from __future__ import annotations

import pytest

from harness.checks import check_panic
from harness.suite import plan

pytestmark = pytest.mark.needs_time(lambda p: plan.needs_s(plan.load_s("burst")))


def test_burst_enters_panic(deploy_isvc, load, timeline):
    isvc = deploy_isvc("cpu-small", patch={"spec": {"predictor": {"minReplicas": 1}}})
    timeline.start()
    load("burst", isvc)
    frames = timeline.frames(isvc)
    timeline.check(check_panic(frames, isvc.params, timeline.records(), expect="burst"))


@pytest.mark.needs_time(lambda p: plan.needs_s(plan.load_s("ramp-below-panic")))
def test_ramp_below_threshold_does_not_panic(deploy_isvc, load, timeline):
    isvc = deploy_isvc("cpu-small", patch={"spec": {"predictor": {"minReplicas": 3}}})
    timeline.start()
    load("ramp-below-panic", isvc)
    frames = timeline.frames(isvc)
    timeline.check(check_panic(frames, isvc.params, timeline.records(), expect="ramp"))
