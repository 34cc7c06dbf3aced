"""The suites' wait conditions on recorded frames (:mod:`harness.suite.predicates`)."""

from __future__ import annotations

import pandas as pd

from harness.observe.frames import READY_COLUMNS
from harness.observe.synthetic import frames_from_series
from harness.suite.predicates import no_pods, scaled_to_at_most


def frames(rows: list[tuple[float, int, int]]):
    f = frames_from_series(0.0, [(0, 1)], [(0, 1)])
    from dataclasses import replace

    return replace(f, ready=pd.DataFrame(rows, columns=list(READY_COLUMNS)))


def test_scaled_to_one_counts_pods_that_are_not_ready_yet():
    # seen on real Knative: a burst asked for 5 pods; 4 started but were not Ready for
    # 11 s (queue-proxy's readiness period), so "1 ready" held mid scale-up
    scaling_up = frames([(0.0, 1, 1), (2.8, 1, 5)])
    assert not scaled_to_at_most(1)(scaling_up)
    scaled_down = frames([(0.0, 1, 1), (2.8, 1, 5), (15.0, 5, 5), (30.0, 1, 1)])
    assert scaled_to_at_most(1)(scaled_down)
    assert not scaled_to_at_most(1)(frames([]))


def test_no_pods_needs_every_pod_gone_or_terminating():
    assert not no_pods(frames([(0.0, 0, 1)]))
    assert no_pods(frames([(0.0, 1, 1), (9.0, 0, 0)]))
