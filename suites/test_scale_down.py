"""Claim 5, scale-down: no step below floor(ready / max-scale-down-rate) (one pod a step
always allowed), nothing before scale-down-delay has passed, and the trajectory inside
the reference model's band for the same measured load."""

from __future__ import annotations

import pytest

from harness.checks import check_scale_down
from harness.suite.predicates import ready_at_most

SETTLE_S = 5.0
"""Recording kept on after the last step: the model's band around it needs the seconds
that follow (its time tolerance looks both ways)."""

pytestmark = pytest.mark.needs_time(lambda p: p.stable_window + p.scale_down_delay + 40)


def test_scale_down_rate_delay_and_band(deploy_isvc, load, timeline):
    isvc = deploy_isvc("cpu-small", patch={"spec": {"predictor": {"minReplicas": 1}}})
    timeline.start()
    load("steady", isvc)
    p = isvc.params.params
    timeline.wait(ready_at_most(1), isvc=isvc, what="scale-down to one pod",
                  timeout=p.stable_window + p.scale_down_delay + 40,
                  then=SETTLE_S)
    frames = timeline.frames(isvc)
    timeline.check(check_scale_down(frames, isvc.params, timeline.records()))
