"""Claim 6, scale to zero: not before stable window + scale-down delay + retention after
the last request, and by that time plus the budget; the per-service retention annotation
overrides the default; minReplicas 1 never reaches zero.

Each wait is the reference model's time to zero pods for the planned load under the
effective parameters, plus its budget (:mod:`harness.suite.plan`)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.checks import check_scale_to_zero
from harness.params import KPAParams
from harness.suite import plan
from harness.suite.predicates import no_pods

RETENTION = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
ONE_POD = {"spec": {"predictor": {"containerConcurrency": 2}}}
"""One user of the ``short`` load is one pod's worth: zero is reached from one pod."""
LOAD = "short"
DEFAULT = plan.Service("cpu-small", patch=ONE_POD)
ANNOTATED = plan.Service("cpu-small", patch=ONE_POD, annotations={RETENTION: "12s"})
MIN_ONE = plan.Service("cpu-small", patch={"spec": {"predictor": {"minReplicas": 1,
                                                     "containerConcurrency": 2}}})


def to_zero(p: KPAParams) -> plan.Wait:
    return plan.to_zero(p, what="scale to zero", load=LOAD)


def past_zero(p: KPAParams) -> plan.Wait:
    """When the same service with minReplicas 0 would have reached zero."""
    return plan.to_zero(replace(p, min_scale=0), what="zero for minReplicas 0", load=LOAD)


def _needs(service: plan.Service, wait) -> object:
    return pytest.mark.needs_time(
        lambda p: plan.needs_s(plan.after_load(wait(plan.isvc_params(p, service)))))


@_needs(DEFAULT, to_zero)
def test_scales_to_zero_after_the_retention(deploy_isvc, load, timeline):
    isvc = deploy_isvc(DEFAULT.source, **DEFAULT.kwargs())
    timeline.start()
    load(LOAD, isvc)
    timeline.wait(no_pods, until=to_zero(isvc.params.params), isvc=isvc)
    frames = timeline.frames(isvc)
    timeline.check(check_scale_to_zero(frames, isvc.params, timeline.records()))


@_needs(ANNOTATED, to_zero)
def test_retention_annotation_overrides_the_default(deploy_isvc, load, timeline):
    isvc = deploy_isvc(ANNOTATED.source, **ANNOTATED.kwargs())
    assert isvc.params.params.scale_to_zero_pod_retention_period == 12.0
    timeline.start()
    load(LOAD, isvc)
    timeline.wait(no_pods, until=to_zero(isvc.params.params), isvc=isvc)
    frames = timeline.frames(isvc)
    timeline.check(check_scale_to_zero(frames, isvc.params, timeline.records()))


@_needs(MIN_ONE, past_zero)
def test_min_replicas_one_never_reaches_zero(deploy_isvc, load, timeline):
    isvc = deploy_isvc(MIN_ONE.source, **MIN_ONE.kwargs())
    timeline.start()
    load(LOAD, isvc)
    timeline.hold(past_zero(isvc.params.params), isvc=isvc)
    frames = timeline.frames(isvc)
    timeline.check(check_scale_to_zero(frames, isvc.params, timeline.records()))
