"""Claim 9, no request lost: from zero pods (the activator buffers) and while pods go
away under traffic, every request sent gets a response and none is a 5xx."""

from __future__ import annotations

import pytest

from harness.checks import check_no_request_lost
from harness.suite.predicates import no_pods, to_zero_s

pytestmark = pytest.mark.needs_time(lambda p: to_zero_s(p) + 40)


def test_every_request_answered_from_zero_and_during_scale_down(deploy_isvc, load,
                                                                 timeline):
    isvc = deploy_isvc("cpu-small")
    timeline.start()
    p = isvc.params.params
    timeline.wait(no_pods, isvc=isvc, what="scale to zero before the load",
                  timeout=to_zero_s(p) + 30)
    load("lossless", isvc)
    frames = timeline.frames(isvc)
    timeline.check(check_no_request_lost(frames, isvc.params, timeline.records()))
