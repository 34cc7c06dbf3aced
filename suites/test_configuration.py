"""Claim 1, configuration: every knob the profile documents has that effective value on
the cluster (``config-autoscaler`` + the reference InferenceService's revision); and,
as a verdict of its own, the documentation holds against Knative (no documentation
finding of severity ``error`` that the profile does not acknowledge by id)."""

from __future__ import annotations

import pytest

from harness.checks import check_configuration, check_documentation
from harness.kube.knative import read_config_autoscaler
from harness.resolve import resolve
from harness.suite import plan

pytestmark = pytest.mark.needs_time(lambda p: plan.needs_s())


def test_effective_knobs_match_the_profile(cluster, deploy_isvc, profile_name, timeline):
    isvc = deploy_isvc("cpu-small")
    configmap = read_config_autoscaler(cluster.kube)
    resolved = resolve(profile=profile_name, configmap=configmap or {})
    timeline.note(configmap=configmap, revision=isvc.revision)
    timeline.check(check_configuration(resolved), check_documentation(resolved))
