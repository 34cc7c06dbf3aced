"""Claim 8, GPU placement: every predictor pod requests the GPU and runs on a node of the
requested class (Quadro RTX 5000); when the class runs out of GPUs, the extra pods stay
Pending with the scheduler's reason and never land elsewhere."""

from __future__ import annotations

import pytest

from harness.checks import check_gpu_placement
from harness.suite import plan

GPU_CLASS = "Quadro_RTX_5000"

pytestmark = pytest.mark.needs_time(lambda p: plan.needs_s(plan.load_s("gpu")))


@pytest.mark.gpu
def test_pods_land_on_the_requested_gpu_class(cluster, deploy_isvc, load, timeline):
    timeline.start()
    isvc = deploy_isvc("gpu-rtx5000", patch={"spec": {"predictor": {"maxReplicas": 6}}})
    load("gpu", isvc)
    frames = timeline.frames(isvc)
    timeline.check(check_gpu_placement(frames, isvc.params, timeline.records(),
                                       gpu_class=GPU_CLASS, nodes=cluster.node_labels()))
