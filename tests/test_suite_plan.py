"""The suites' plan: waits from the reference model (harness.suite.plan), the
longest-first schedule (harness.suite.schedule) and the progress lines
(harness.suite.progress)."""

from __future__ import annotations

import io
import json
import re
import time
from dataclasses import replace
from pathlib import Path

import pytest

from harness.kpa.expect import at_most, event_time, zero
from harness.resolve import resolve
from harness.suite import plan
from harness.suite.progress import ProgressDisplay, ProgressWriter, line, read_progress
from harness.suite.schedule import assign, makespan, read_plan, workers_for, write_plan

pytest_plugins = ("pytester",)

SUITES = Path(__file__).resolve().parents[1] / "suites"
COREWEAVE = resolve(profile="coreweave").params
FAST = resolve(profile="fast").params
MIN_ONE = plan.Service(patch={"spec": {"predictor": {"minReplicas": 1}}})


def test_the_scale_down_wait_is_the_models_descent_not_a_formula():
    # the documented profile: 1.1 per decision with a 60 s delay is one pod a minute
    p = plan.isvc_params(COREWEAVE, MIN_ONE)
    assert p.min_scale == 1 and p.max_scale == 5 and p.max_scale_down_rate == 1.1
    w = plan.to_pods(p, 1, what="scale-down to one pod", load="steady")
    # 4 users at 0.85 a pod: 5 pods, then four steps down a minute apart after the window
    steps = 4
    assert p.stable_window + steps * p.scale_down_delay <= w.model_s \
        <= p.stable_window + (steps + 1) * p.scale_down_delay
    assert w.model_s > p.stable_window + p.scale_down_delay + 40  # the old wait: too short
    assert w.deadline_s == w.model_s + w.budget.total
    assert set(w.budget.terms) == {"decision tick", "metric period", "observation latency",
                                   "actuation"}
    assert "ready pods <= 1 by" in w.describe() and "after the load's start" in w.describe()
    # the fast profile: the same scenario in seconds
    fast = plan.to_pods(plan.isvc_params(FAST, MIN_ONE), 1, what="x", load="steady")
    assert 12 < fast.model_s < 40


def test_the_wait_covers_every_variant_of_the_model():
    load = plan.planned_load("short")
    assert load == [1.0] * 5
    one_pod = replace(COREWEAVE, container_concurrency=2)  # one user, one pod
    t = event_time(one_pod, load, zero(), initial_ready=1, fresh=True, pod_startup=5)
    assert t.earliest <= t.latest
    # from one pod: stable window + the delay in force + retention, to within the tick
    assert abs(t.latest - (5 + 180 + 60 + 1800)) <= 6
    # from two pods (containerConcurrency 1) a rate-limited step comes first: a delay more
    two = event_time(COREWEAVE, load, zero(), initial_ready=1, fresh=True, pod_startup=5)
    assert two.latest >= t.latest + 50
    never = event_time(COREWEAVE, load, at_most(-1), initial_ready=1)
    assert never.latest is None and not never.reached
    with pytest.raises(ValueError, match="never reaches"):
        plan.wait_for(COREWEAVE, at_most(-1), what="x", load="short")


def test_the_lossless_load_is_held_until_a_pod_goes():
    p = plan.isvc_params(COREWEAVE, plan.Service())
    held = plan.extended_load(p, "lossless")
    first = plan.extended_load(plan.isvc_params(FAST, plan.Service()), "lossless")
    assert first.total == 22  # the fast profile's pods go within the written load
    assert held.total > p.stable_window + p.scale_down_delay  # coreweave's go minutes later
    assert held.segments[0] == first.segments[0]
    assert "first pod removal" in held.description


def test_no_suite_computes_a_wait_from_the_knobs():
    knob = r"(stable_window|scale_down_delay|retention_period|grace_period|panic_window)"
    arithmetic = re.compile(rf"{knob}\s*[-+*/]|[-+*/]\s*[\w.]*{knob}")
    for path in SUITES.glob("test_*.py"):
        text = path.read_text()
        assert not arithmetic.search(text), f"{path.name}: {arithmetic.search(text)}"
        for word in ("to_zero_s", "time.sleep", "timeout="):
            assert word not in text, f"{path.name} uses {word}"


def test_longest_first_assignment_and_worker_count():
    expected = [2278, 2090, 2090, 2030, 478, 302, 58, 54, 54, 52, 52, 52, 35]
    parts = assign(expected, 4)
    # each long suite starts at once, on a worker of its own
    assert sorted(p[0] for p in parts) == [0, 1, 2, 3]
    assert all(expected[a] >= expected[b] for p in parts for a, b in zip(p, p[1:], strict=False))
    assert makespan(expected, 4) > expected[0] + 120  # four workers: 42 minutes
    assert workers_for(expected, at_least=4, margin=120) == 5
    assert makespan(expected, 5) == expected[0]
    assert workers_for([30.0] * 4, at_least=4) == 4


def test_the_plan_file_round_trips(tmp_path):
    write_plan(tmp_path, {"a::b": 12.34, "c::d": 5})
    assert read_plan(tmp_path) == {"a::b": 12.3, "c::d": 5.0}
    assert read_plan(tmp_path / "missing") == {}


TIMED = """
import os
import pytest

def _log(name, log="ORDER_LOG"):
    with open(os.environ[log], "a") as fh:
        fh.write(f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')} {name}\\n")

@pytest.mark.needs_time(lambda p: 10)
def test_short_a(): _log("short_a")

@pytest.mark.needs_time(lambda p: 11)
def test_short_b(): _log("short_b")

@pytest.mark.needs_time(lambda p: 400)
def test_long_a(request):
    _log("long_a")
    node = request.node
    _log(f"NEEDS-{dict(node.user_properties)['needs_s']}-TIMEOUT-"
         f"{node.get_closest_marker('timeout').args[0]}", log="TIMEOUT_LOG")

@pytest.mark.needs_time(lambda p: 300)
def test_long_b(): _log("long_b")
"""


def test_xdist_runs_the_longest_first_each_on_its_own_worker(pytester, tmp_path,
                                                              monkeypatch):
    pytester.makepyfile(test_timed=TIMED)
    log = tmp_path / "order.log"
    monkeypatch.setenv("ORDER_LOG", str(log))
    monkeypatch.setenv("TIMEOUT_LOG", str(tmp_path / "timeout.log"))
    res = pytester.runpytest_subprocess("-p", "harness.suite.plugin", "-p",
                                        "no:cacheprovider", "--profile", "fast",
                                        "--slow-after", "1000", "--report-dir",
                                        str(tmp_path / "r"), "-n", "2")
    res.assert_outcomes(passed=4)
    by_worker: dict[str, list[str]] = {}
    for w, name in (ln.split() for ln in log.read_text().splitlines()):
        by_worker.setdefault(w, []).append(name)
    firsts = sorted(names[0] for names in by_worker.values())
    assert firsts == ["long_a", "long_b"], by_worker
    # the timeout comes from the same number as the plan: needs x 1.25 + 120
    assert (tmp_path / "timeout.log").read_text().split()[1] == "NEEDS-400-TIMEOUT-620"


def test_progress_lines_and_the_plain_display(tmp_path):
    state = {"phase": "waits for scale to zero", "phase_started": time.time(),
             "phase_expected_s": 2040.0, "ready": 1, "desired": 0, "panic": False}
    writer = ProgressWriter(tmp_path, "scale_to_zero-after_the_retention", 2090.0,
                            lambda: state).start()
    (rec,) = read_progress(tmp_path)
    text = line(rec, now=rec["phase_started"] + 65)
    assert text == ("scale_to_zero-after_the_retention: waits for scale to zero (1m5s of "
                    "34m0s) | 1m5s / 34m50s | ready 1, desired 0, panic no")
    out = io.StringIO()
    display = ProgressDisplay(tmp_path, stream=out, live=False, every_s=0.2).start()
    display.write("suites/test_scale_to_zero.py ..")  # pytest's dots, no newline yet
    time.sleep(0.5)
    display.stop()
    writer.stop("passed")
    got = out.getvalue().splitlines()
    assert got[0] == "suites/test_scale_to_zero.py .."  # the progress starts a new line
    assert re.match(r"progress \[\d+s\] 0 done, 1 running$", got[1])
    assert got[2].startswith("progress   scale_to_zero-after_the_retention: waits for scale")
    (done,) = read_progress(tmp_path)
    assert done["done"] and done["outcome"] == "passed" and done["took_s"] >= 0
    assert json.loads((tmp_path / ".progress" /
                       "scale_to_zero-after_the_retention.json").read_text())["done"]
