"""A wait that runs out still ends in a verdict, with the trajectory so far: a suite's
planned wait (from the reference model) shrunk below the model's need fails the test
with "not reached: ..." in the report (not an error without a verdict), and a test
that dies before its check still leaves a failing verdict saying why."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ("pytester",)

PLUGIN = ("-p", "harness.suite.plugin", "-p", "no:cacheprovider")

SHRUNK = """
from dataclasses import replace

from harness.checks import check_scale_to_zero
from harness.suite import plan
from harness.suite.predicates import no_pods


def test_wait_shrunk_below_the_model(deploy_isvc, timeline):
    isvc = deploy_isvc("cpu-small")
    timeline.start()
    wait = plan.to_zero(isvc.params.params, what="scale to zero", anchor="the wait's start")
    assert wait.model_s > 8  # the model's need: stable window, delay, retention
    shrunk = replace(wait, model_s=wait.model_s / 4)
    assert timeline.wait(no_pods, until=shrunk, isvc=isvc) is None
    frames = timeline.frames(isvc)
    timeline.check(check_scale_to_zero(frames, isvc.params, timeline.records()))


def test_dies_before_its_check(timeline):
    raise RuntimeError("the ingress went away")
"""


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_shrunk_wait_fails_with_the_trajectory(pytester, tmp_path):
    pytester.makepyfile(test_shrunk=SHRUNK)
    reports = tmp_path / "reports"
    res = pytester.runpytest_subprocess(*PLUGIN, "--cluster", "local", "--profile", "fast",
                                        "--run-id", "01010000-wait", "--report-dir",
                                        str(reports), timeout=150)
    res.assert_outcomes(failed=2)
    res.stdout.fnmatch_lines(["*scale-to-zero: FAIL*",
                              "*why: not reached: 1 pods at the deadline, 0 expected by * s "
                              "after the wait's start (model * s + 4.5 s budget)*"])
    run_dir = reports / "01010000-wait"
    summary = json.loads((run_dir / "summary.json").read_text())
    verdicts = {v["case"]: v for v in summary["verdicts"]}
    shrunk = verdicts["shrunk-wait_shrunk_below_the_model"]
    assert shrunk["status"] == "fail" and shrunk["why"].startswith("not reached: 1 pods")
    assert shrunk["numbers"]["waits_missed"] == 1
    # the trajectory so far is in the report: the pod's timeline and its plot
    ready = (run_dir / "cases" / "shrunk-wait_shrunk_below_the_model" / "ready.csv")
    assert ready.read_text().strip().splitlines()[-1].split(",")[1] == "1"
    assert (run_dir / "plots" / "shrunk-wait_shrunk_below_the_model--scale-to-zero.png"
            ).stat().st_size > 1000
    died = verdicts["shrunk-dies_before_its_check"]
    assert died["status"] == "fail"
    assert "RuntimeError: the ingress went away" in died["why"]
    case = summary["cases"]["shrunk-wait_shrunk_below_the_model"]
    assert case["outcome"] == "failed" and case["took_s"] > 0
