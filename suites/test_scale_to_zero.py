"""Claim 6, scale to zero: not before stable window + scale-down delay + retention after
the last request, and by that time plus the budget; the per-service retention annotation
overrides the default; minReplicas 1 never reaches zero."""

from __future__ import annotations

import time

import pytest

from harness.checks import check_scale_to_zero
from harness.suite.predicates import no_pods, to_zero_s

RETENTION = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
ONE_POD = {"spec": {"predictor": {"containerConcurrency": 2}}}
"""One user of the ``short`` load is one pod's worth: zero is reached from one pod."""


pytestmark = pytest.mark.needs_time(lambda p: to_zero_s(p) + 40)


def _to_zero_s(isvc) -> float:
    return to_zero_s(isvc.params.params)


def test_scales_to_zero_after_the_retention(deploy_isvc, load, timeline):
    isvc = deploy_isvc("cpu-small", patch=ONE_POD)
    timeline.start()
    load("short", isvc)
    timeline.wait(no_pods, isvc=isvc, what="scale to zero", timeout=_to_zero_s(isvc) + 30)
    frames = timeline.frames(isvc)
    timeline.check(check_scale_to_zero(frames, isvc.params, timeline.records()))


def test_retention_annotation_overrides_the_default(deploy_isvc, load, timeline):
    isvc = deploy_isvc("cpu-small", patch=ONE_POD, annotations={RETENTION: "12s"})
    assert isvc.params.params.scale_to_zero_pod_retention_period == 12.0
    timeline.start()
    load("short", isvc)
    timeline.wait(no_pods, isvc=isvc, what="scale to zero", timeout=_to_zero_s(isvc) + 30)
    frames = timeline.frames(isvc)
    timeline.check(check_scale_to_zero(frames, isvc.params, timeline.records()))


def test_min_replicas_one_never_reaches_zero(deploy_isvc, load, timeline):
    isvc = deploy_isvc("cpu-small", patch={"spec": {"predictor": {"minReplicas": 1,
                                                                  "containerConcurrency": 2}}})
    timeline.start()
    load("short", isvc)
    time.sleep(_to_zero_s(isvc) + 6)  # past when a min-0 service would have gone
    frames = timeline.frames(isvc)
    timeline.check(check_scale_to_zero(frames, isvc.params, timeline.records()))
