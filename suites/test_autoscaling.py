"""Claim 2: autoscaling is on exactly when minReplicas != maxReplicas.

min == max (``fixed-scale``, 2 pods): ten users, more than two pods can take, change
nothing. min != max (``cpu-small``, 0..5): four users make the desired scale rise."""

from __future__ import annotations

import pytest

from harness.checks import check_autoscaling_enabled
from harness.suite import plan

pytestmark = pytest.mark.needs_time(lambda p: plan.needs_s(plan.load_s("fixed")))


def test_min_equal_max_does_not_scale(deploy_isvc, load, timeline):
    isvc = deploy_isvc("fixed-scale")
    timeline.start()
    load("fixed", isvc)
    frames = timeline.frames(isvc)
    timeline.check(check_autoscaling_enabled(frames, isvc.params, timeline.records()))


def test_min_not_equal_max_scales_under_load(deploy_isvc, load, timeline):
    isvc = deploy_isvc("cpu-small")
    timeline.start()
    load("steady", isvc)
    frames = timeline.frames(isvc)
    timeline.check(check_autoscaling_enabled(frames, isvc.params, timeline.records()))
