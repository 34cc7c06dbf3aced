"""Claim 5, scale-down: no step below floor(ready / max-scale-down-rate) (one pod a step
always allowed), nothing before scale-down-delay has passed, and the trajectory inside
the reference model's band for the same measured load.

The wait for one pod is the reference model's time for the planned load under the
effective parameters, plus its budget (:mod:`harness.suite.plan`): at rate 1.1 with a
60 s delay that is one pod a minute after the stable window. The load starts on a
revision older than its panic window (:func:`harness.suite.plan.warm`), the state the
reference band is modelled in: on a younger one Knative averages fewer buckets and
panics earlier than the band allows."""

from __future__ import annotations

import pytest

from harness.checks import check_scale_down
from harness.params import KPAParams
from harness.suite import plan
from harness.suite.predicates import scaled_to_at_most

SETTLE_S = 5.0
"""Recording kept on after the last step: the model's band around it needs the seconds
that follow (its time tolerance looks both ways)."""
SERVICE = plan.Service("cpu-small", patch={"spec": {"predictor": {"minReplicas": 1}}})
LOAD = "steady"


def one_pod(p: KPAParams) -> plan.Wait:
    return plan.to_pods(p, 1, what="scale-down to one pod", load=LOAD)


def _needs(p: KPAParams) -> float:
    p = plan.isvc_params(p, SERVICE)
    return plan.needs_s(plan.warm(p).deadline_s, plan.after_load(one_pod(p)), SETTLE_S)


pytestmark = pytest.mark.needs_time.with_args(_needs)


def test_scale_down_rate_delay_and_band(deploy_isvc, load, timeline):
    isvc = deploy_isvc(SERVICE.source, **SERVICE.kwargs())
    timeline.start()
    timeline.hold(plan.warm(isvc.params.params), isvc=isvc)
    load(LOAD, isvc)
    timeline.wait(scaled_to_at_most(1), until=one_pod(isvc.params.params), isvc=isvc,
                  then=SETTLE_S)
    frames = timeline.frames(isvc)
    timeline.check(check_scale_down(frames, isvc.params, timeline.records()))
