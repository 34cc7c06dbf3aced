"""Claim 4, scale-up rate: no step of the desired scale above
max(ceil(max-scale-up-rate x ready), ready + 1) under a burst."""

from __future__ import annotations

import pytest

from harness.checks import check_scale_up_rate
from harness.suite import plan

pytestmark = pytest.mark.needs_time(lambda p: plan.needs_s(plan.load_s("burst")))


def test_no_step_above_the_scale_up_rate(deploy_isvc, load, timeline):
    isvc = deploy_isvc("cpu-small", patch={"spec": {"predictor": {"minReplicas": 1}}})
    timeline.start()
    load("burst", isvc)
    frames = timeline.frames(isvc)
    timeline.check(check_scale_up_rate(frames, isvc.params, timeline.records()))
