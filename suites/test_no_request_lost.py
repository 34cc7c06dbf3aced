"""Claim 9, no request lost: from zero pods (the activator buffers) and while pods go
away under traffic, every request sent gets a response and none is a 5xx.

The wait for zero pods is the reference model's time for an idle new service; the
``lossless`` load's last level is held until the model's first pod removal plus the
budget, so that requests are in flight while a pod goes (:mod:`harness.suite.plan`)."""

from __future__ import annotations

import pytest

from harness.checks import check_no_request_lost
from harness.params import KPAParams
from harness.suite import plan
from harness.suite.predicates import no_pods

SERVICE = plan.Service("cpu-small")
LOAD = "lossless"


def idle_to_zero(p: KPAParams) -> plan.Wait:
    return plan.to_zero(p, what="scale to zero before the load", anchor="the wait's start")


def _needs(p: KPAParams) -> float:
    p = plan.isvc_params(p, SERVICE)
    return plan.needs_s(idle_to_zero(p).deadline_s, plan.load_s(plan.extended_load(p, LOAD)))


pytestmark = pytest.mark.needs_time.with_args(_needs)


def test_every_request_answered_from_zero_and_during_scale_down(deploy_isvc, load,
                                                                 timeline):
    isvc = deploy_isvc(SERVICE.source, **SERVICE.kwargs())
    timeline.start()
    p = isvc.params.params
    timeline.wait(no_pods, until=idle_to_zero(p), isvc=isvc)
    load(plan.extended_load(p, LOAD), isvc)
    frames = timeline.frames(isvc)
    timeline.check(check_no_request_lost(frames, isvc.params, timeline.records()))
