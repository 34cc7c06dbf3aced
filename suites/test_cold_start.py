"""Claim 7, cold start: the first request to a service with zero pods is answered, and
its time, split into autoscaler reaction, pod creation, scheduling, storage initializer,
container start, queue-proxy and model ready and first response
(:mod:`harness.checks.cold_start`), is within the documented claim for a small model (the
profile's ``claims.cold-start-small``; the CoreWeave page's when the profile has none).

The wait for zero pods is the reference model's time for an idle new service under the
effective parameters, plus its budget (:mod:`harness.suite.plan`)."""

from __future__ import annotations

import pytest

from harness.checks import check_cold_start
from harness.params import KPAParams
from harness.profiles import load_profile
from harness.suite import plan
from harness.suite.predicates import no_pods

CLAIM = "cold-start-small"
SERVICE = plan.Service("cpu-small")
LOAD = "cold"


def idle_to_zero(p: KPAParams) -> plan.Wait:
    return plan.to_zero(p, what="scale to zero before the cold start",
                        anchor="the wait's start")


pytestmark = pytest.mark.needs_time(
    lambda p: plan.needs_s(idle_to_zero(plan.isvc_params(p, SERVICE)).deadline_s,
                           plan.load_s(LOAD)))


def test_cold_start_of_a_small_model(deploy_isvc, load, timeline, profile_name):
    isvc = deploy_isvc(SERVICE.source, **SERVICE.kwargs())
    timeline.start()
    timeline.wait(no_pods, until=idle_to_zero(isvc.params.params), isvc=isvc)
    load(LOAD, isvc)
    frames = timeline.frames(isvc)
    profile = load_profile(profile_name)
    if CLAIM not in profile.claims:
        profile = load_profile("coreweave")
    timeline.note(claims_from=profile.name)
    timeline.check(check_cold_start(frames, isvc.params, timeline.records(), profile=profile,
                                    size_class="small"))
