"""Claim 7, cold start: the first request to a service with zero pods is answered, and
its time, split into autoscaler reaction, scheduling, initialization, container start to
ready and first response, is within the documented claim for a small model (the
profile's ``claims.cold-start-small``; the CoreWeave page's when the profile has none)."""

from __future__ import annotations

import pytest

from harness.checks import check_cold_start
from harness.profiles import load_profile
from harness.suite.predicates import no_pods, to_zero_s

CLAIM = "cold-start-small"

pytestmark = pytest.mark.needs_time(lambda p: to_zero_s(p) + 40)


def test_cold_start_of_a_small_model(deploy_isvc, load, timeline, profile_name):
    isvc = deploy_isvc("cpu-small")
    timeline.start()
    p = isvc.params.params
    timeline.wait(no_pods, isvc=isvc, what="scale to zero before the cold start",
                  timeout=to_zero_s(p) + 30)
    load("cold", isvc)
    frames = timeline.frames(isvc)
    profile = load_profile(profile_name)
    if CLAIM not in profile.claims:
        profile = load_profile("coreweave")
    timeline.note(claims_from=profile.name)
    timeline.check(check_cold_start(frames, isvc.params, timeline.records(), profile=profile,
                                    size_class="small"))
