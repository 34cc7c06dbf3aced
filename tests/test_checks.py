"""Each conformance check passes on a timeline that honours its claim and fails on one
that breaks it (a check that cannot fail is a defect)."""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd
import pytest
import yaml

from harness.checks import (
    FAIL,
    PASS,
    SKIP,
    Budget,
    Verdict,
    check_autoscaling_enabled,
    check_cold_start,
    check_configuration,
    check_documentation,
    check_gpu_placement,
    check_no_request_lost,
    check_panic,
    check_scale_down,
    check_scale_to_zero,
    check_scale_up_rate,
    timing_budget,
)
from harness.checks.verdict import INCONCLUSIVE
from harness.kpa import simulate
from harness.observe.frames import SCHEDULING_COLUMNS, Frames, infer_panic
from harness.observe.synthetic import (
    frames_from_series,
    frames_from_simulation,
    pods_frame,
    records_from_load,
)
from harness.profiles import load_profile
from harness.resolve import resolve

T0 = 1_800_000_000.0
FAST = resolve(profile="fast").params
BURST = [0.5] * 20 + [4.0] * 20 + [0.0] * 60
RAMP = [3.0 + 2.0 * k / 60 for k in range(60)] + [5.0] * 30


def model_run(params, load, *, startup=2.0, initial_ready=1, checked_with=None):
    """A timeline that behaves exactly like the reference model (with ``params``)."""
    sim = simulate(params, load, startup, initial_ready=initial_ready)
    f = frames_from_simulation(sim, T0, pod_startup=startup)
    f = replace(f, panic=infer_panic(f.scale, f.ready, checked_with or params, end=f.end))
    return f, records_from_load(load, T0)


def series(desired, ready, *, end=100.0, panic=None) -> Frames:
    return frames_from_series(T0, desired, ready, end=end, panic=panic)


# ---------------------------------------------------------------- verdict and budget


def test_budget_is_made_of_named_terms_and_sums_them():
    b = timing_budget(0.25, 3.0)
    assert set(b.terms) == {"decision tick", "metric period", "observation latency",
                            "pod start-up (measured)"}
    assert b.total == pytest.approx(6.25)
    assert "2 s decision tick" in b.describe()


def test_verdict_round_trips_through_json_dict():
    f, rec = model_run(FAST, BURST)
    v = check_scale_down(f, FAST, rec)
    back = Verdict.from_dict(v.as_dict())
    assert (back.check, back.status, back.window, back.claim_key) == (
        v.check, v.status, v.window, v.claim_key)
    assert isinstance(back.budget, Budget) and back.budget.total == v.budget.total


# ---------------------------------------------------------------- 1 configuration


def test_configuration_passes_when_cluster_matches_profile():
    prof = load_profile("fast")
    v = check_configuration(resolve(profile="fast", configmap=dict(prof.config)))
    assert v.status == PASS, v.why


def test_configuration_fails_on_a_changed_knob_and_names_it():
    cm = dict(load_profile("fast").config) | {"max-scale-down-rate": "3"}
    v = check_configuration(resolve(profile="fast", configmap=cm))
    assert v.status == FAIL
    assert "max_scale_down_rate" in v.why and "3" in v.why


def test_configuration_lists_documentation_findings_as_evidence_without_failing():
    v = check_configuration(resolve(profile="coreweave"))
    assert v.status == PASS
    assert (v.evidence["id"] == "tick-interval").any()


def _profile_file(tmp_path, acknowledged):
    doc = yaml.safe_load(load_profile("coreweave").path.read_text())
    doc["acknowledged"] = acknowledged
    path = tmp_path / "page.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_documentation_fails_on_error_findings_the_profile_does_not_acknowledge(tmp_path):
    v = check_documentation(resolve(profile=_profile_file(tmp_path, {})))
    assert v.status == FAIL
    assert v.why.startswith("4 documentation finding(s) of severity error not acknowledged")
    for fid in ("tick-interval", "panic-window", "stable-window", "scale-to-zero-after"):
        assert fid in v.why
    # only the cluster's knobs decide the configuration verdict
    assert check_configuration(resolve(profile=_profile_file(tmp_path, {}))).status == PASS


def test_an_acknowledged_finding_is_reported_and_does_not_fail():
    v = check_documentation(resolve(profile="coreweave"))  # acknowledges its four errors
    assert v.status == PASS, v.why
    rows = v.evidence.set_index("id")
    assert rows.loc["panic-window", "status"] == "acknowledged"
    assert "18 s" in rows.loc["panic-window", "reason"]
    assert rows.loc["panic-threshold", "status"] == "open"  # a warning: reported, not failing
    assert v.numbers["acknowledged"] == 4 and v.numbers["open_errors"] == 0


def test_an_acknowledgement_of_no_finding_fails(tmp_path):
    prof = _profile_file(tmp_path, {**load_profile("coreweave").acknowledged,
                                    "retention": "a finding the page never had"})
    v = check_documentation(resolve(profile=prof))
    assert v.status == FAIL and "acknowledged but no such finding: retention" in v.why


# ---------------------------------------------------------------- 2 autoscaling on/off

FIXED = replace(FAST, min_scale=2, max_scale=2)


@pytest.mark.parametrize(
    ("name", "params", "desired", "ready", "expected"),
    [
        ("min != max scales up under a burst", FAST,
         [(0, 1), (22, 4), (24, 5)], [(0, 1), (24, 4), (26, 5)], PASS),
        ("min != max but desired never moves", FAST, [(0, 1)], [(0, 1)], FAIL),
        ("min == max holds under a burst", FIXED, [(0, 2)], [(0, 2)], PASS),
        ("min == max but it scaled", FIXED, [(0, 2), (22, 4)], [(0, 2), (24, 4)], FAIL),
    ],
)
def test_autoscaling_is_on_exactly_when_min_differs_from_max(
    name, params, desired, ready, expected
):
    v = check_autoscaling_enabled(series(desired, ready), params, records_from_load(BURST, T0))
    assert v.status == expected, (name, v.why, v.observed)


# ---------------------------------------------------------------- 3 panic


def test_panic_burst_scales_up_within_the_panic_window():
    f, rec = model_run(FAST, BURST)
    v = check_panic(f, FAST, rec)
    assert v.status == PASS, v.why
    assert v.window is not None and v.window.by == pytest.approx(FAST.panic_window + 3.5)
    assert v.numbers["scale_up_after"] <= v.window.by


def test_panic_fails_when_the_burst_is_answered_late():
    f = series([(0, 1), (40, 5)], [(0, 1), (42, 5)])
    v = check_panic(f, FAST, records_from_load(BURST, T0))
    assert v.status == FAIL and "after the burst" in v.why


def test_panic_fails_when_it_scales_down_while_panicking():
    f = series([(0, 1), (22, 5), (30, 3)], [(0, 1), (24, 5), (31, 3)],
               panic=[(0, False), (22, True), (50, False)])
    v = check_panic(f, FAST, records_from_load(BURST, T0))
    assert v.status == FAIL and "while panicking" in v.why


def test_panic_ramp_below_threshold_does_not_panic():
    f, rec = model_run(FAST, RAMP, initial_ready=4)
    v = check_panic(f, FAST, rec)
    assert v.status == PASS, v.why
    assert "ramp" in v.claim


def test_panic_ramp_fails_when_the_autoscaler_panics_anyway():
    f, rec = model_run(FAST, RAMP, initial_ready=4)
    f = replace(f, panic=pd.DataFrame({"time": [T0 + 30, T0 + 40], "panic": [True, False],
                                       "inferred": [False, False],
                                       "source": ["metrics", "metrics"]}))
    assert check_panic(f, FAST, rec).status == FAIL


def test_panic_burst_expected_but_load_never_crossed_is_a_skip():
    f, rec = model_run(FAST, RAMP, initial_ready=4)
    assert check_panic(f, FAST, rec, expect="burst").status == SKIP


# ---------------------------------------------------------------- 4 scale-up rate

WIDE = replace(FAST, max_scale=20)


@pytest.mark.parametrize(
    ("name", "desired", "ready", "expected"),
    [
        ("1 -> 10 at rate 10 is allowed", [(0, 1), (10, 10)], [(0, 1), (12, 10)], PASS),
        ("1 -> 15 at rate 10 is too fast", [(0, 1), (10, 15)], [(0, 1), (12, 15)], FAIL),
        ("0 -> 1 is always allowed", [(0, 0), (10, 1)], [(0, 0), (12, 1)], PASS),
        ("2 -> 21 with 2 ready is too fast", [(0, 2), (10, 21)], [(0, 2)], FAIL),
    ],
)
def test_scale_up_never_exceeds_rate_times_ready(name, desired, ready, expected):
    v = check_scale_up_rate(series(desired, ready), WIDE, None)
    assert v.status == expected, (name, v.why)


def test_scale_up_rate_of_the_model_run_passes():
    f, rec = model_run(FAST, BURST)
    assert check_scale_up_rate(f, FAST, rec).status == PASS


# ---------------------------------------------------------------- 5 scale-down


def test_scale_down_of_the_model_run_passes():
    f, rec = model_run(FAST, BURST)
    v = check_scale_down(f, FAST, rec)
    assert v.status == PASS, v.why


def test_scale_down_fails_on_10_to_5_at_rate_1_1():
    p = replace(FAST, max_scale_down_rate=1.1, max_scale=10)
    f = series([(0, 10), (40, 5)], [(0, 10), (41, 5)])
    v = check_scale_down(f, p, None)
    assert v.status == FAIL
    assert "10 -> 5" in v.why and "below 9" in v.why


def test_scale_down_fails_when_scale_down_delay_is_ignored():
    no_delay = replace(FAST, scale_down_delay=0.0)
    f, rec = model_run(no_delay, BURST, checked_with=FAST)
    v = check_scale_down(f, FAST, rec)
    assert v.status == FAIL
    assert "scale-down-delay" in v.why


def test_scale_down_fails_outside_the_reference_band():
    f = series([(0, 1), (22, 5), (90, 4)], [(0, 1), (24, 5), (91, 4)], end=100)
    v = check_scale_down(f, FAST, records_from_load(BURST, T0))
    assert v.status == FAIL and "band" in v.why


# ---------------------------------------------------------------- 6 scale to zero


def test_scale_to_zero_of_the_model_run_passes():
    f, rec = model_run(FAST, BURST)
    v = check_scale_to_zero(f, FAST, rec)
    assert v.status == PASS, v.why
    assert v.window.not_before < v.numbers["observed"] <= v.window.by


def test_scale_to_zero_fails_when_zero_comes_before_retention():
    f = series([(0, 1), (52, 0)], [(0, 1), (48, 0)])
    rec = records_from_load([0.5] * 40, T0)
    v = check_scale_to_zero(f, FAST, rec)
    assert v.status == FAIL and "before the earliest" in v.why


def test_scale_to_zero_fails_when_a_shorter_retention_is_in_force():
    short = replace(FAST, scale_to_zero_pod_retention_period=0.0)
    f, rec = model_run(short, BURST)
    assert check_scale_to_zero(f, FAST, rec).status == FAIL


def test_scale_to_zero_fails_when_never_reached_by_the_deadline():
    f = series([(0, 1)], [(0, 1)], end=120)
    v = check_scale_to_zero(f, FAST, records_from_load([0.5] * 40, T0))
    assert v.status == FAIL and "not at zero" in v.why


def test_scale_to_zero_retention_annotation_overrides_the_default():
    ann = {"autoscaling.knative.dev/scale-to-zero-pod-retention-period": "20s"}
    res = resolve(profile="fast", annotations=ann)
    assert res.params.scale_to_zero_pod_retention_period == 20
    f, rec = model_run(res.params, BURST + [0.0] * 40)
    v = check_scale_to_zero(f, res, rec)
    assert v.status == PASS, v.why
    assert "retention" in v.claim_key
    f_default, rec_default = model_run(FAST, BURST)
    assert check_scale_to_zero(f_default, res, rec_default).status == FAIL


@pytest.mark.parametrize(
    ("name", "ready", "expected"),
    [("stays at one pod", [(0, 1)], PASS), ("reaches zero", [(0, 1), (60, 0)], FAIL)],
)
def test_min_replicas_one_never_reaches_zero(name, ready, expected):
    p = replace(FAST, min_scale=1)
    f = series([(0, 1)], ready, end=120)
    v = check_scale_to_zero(f, p, records_from_load([0.5] * 10, T0))
    assert v.status == expected, (name, v.why)


# ---------------------------------------------------------------- 7 cold start

COREWEAVE = load_profile("coreweave")


def cold_timeline(*, init_s=1.0, status=200, first_response=0.2):
    created = T0 + 0.3
    pod = {"pod": "m-1", "node": "gpu-1", "phase": "Running", "created": created,
           "scheduled": created + 0.1, "initialized": created + 0.1 + init_s,
           "started": created + 0.3 + init_s, "ready": created + 2.0 + init_s, "gpu": 1.0}
    ready = pd.DataFrame({"time": [T0 - 60, pod["ready"]], "ready": [0, 1], "pods": [0, 1]})
    f = frames_from_series(T0 - 60, [(0, 0)], [(0, 0)], end=80)
    f = replace(f, pods=pods_frame([pod]), ready=ready)
    latency = pod["ready"] + first_response - T0
    rec = pd.DataFrame({"start": [T0], "latency_s": [latency], "status": [status],
                        "bytes": [10], "pod": ["m-1"], "error": [""]})
    return f, rec


@pytest.mark.parametrize(
    ("name", "kw", "size", "expected", "why"),
    [
        ("small model within 5 s", {}, "small", PASS, ""),
        ("small model too slow (model download)", {"init_s": 30.0}, "small", FAIL,
         "storage initializer"),
        ("large model faster than the documented 30 s", {}, "large", FAIL, "outside"),
        ("503 on the first request", {"status": 503}, "small", FAIL, "status 503"),
    ],
)
def test_cold_start_against_the_documented_claim(name, kw, size, expected, why):
    f, rec = cold_timeline(**kw)
    v = check_cold_start(f, None, rec, profile=COREWEAVE, size_class=size)
    assert v.status == expected, (name, v.why)
    assert why in v.why
    phases = v.evidence["seconds"].sum()
    assert phases == pytest.approx(v.numbers["total"])


def test_cold_start_breakdown_names_every_phase():
    f, rec = cold_timeline()
    v = check_cold_start(f, None, rec, profile=COREWEAVE)
    assert list(v.evidence["phase"]) == [
        "autoscaler reaction", "pod creation", "scheduling", "storage initializer",
        "container start", "queue-proxy and model ready", "first response"]
    # no desired-scale change recorded: the reaction merges into the pod's creation
    assert math.isnan(v.numbers["autoscaler reaction"])
    assert v.numbers["pod creation"] == pytest.approx(0.3)
    assert v.numbers["container start"] == pytest.approx(0.2)
    assert v.numbers["queue-proxy and model ready"] == pytest.approx(1.7)


# ---------------------------------------------------------------- 8 GPU placement

NODES = {
    "gpu-a1": {"gpu.nvidia.com/class": "A100"},
    "gpu-a2": {"gpu.nvidia.com/class": "A100"},
    "gpu-r1": {"gpu.nvidia.com/class": "Quadro_RTX_5000"},
}


def placement(pods, events=()):
    f = frames_from_series(T0, [(0, 1)], [(0, 1)], end=60)
    sched = pd.DataFrame(list(events), columns=list(SCHEDULING_COLUMNS))
    return replace(f, pods=pods_frame(pods), scheduling=sched)


POD_OK = {"pod": "p1", "node": "gpu-a1", "gpu": 1.0, "created": T0}
FAILED_SCHED = (T0 + 1, "p3", "FailedScheduling",
                "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.", 1, "Warning")


@pytest.mark.parametrize(
    ("name", "pods", "events", "expected"),
    [
        ("all on the requested class", [POD_OK, POD_OK | {"pod": "p2", "node": "gpu-a2"}],
         (), PASS),
        ("one on the wrong GPU class", [POD_OK, POD_OK | {"pod": "p2", "node": "gpu-r1"}],
         (), FAIL),
        ("one without the GPU request", [POD_OK, POD_OK | {"pod": "p2", "gpu": 0.0}], (), FAIL),
        ("out of capacity: Pending with the scheduler's reason",
         [POD_OK, POD_OK | {"pod": "p3", "node": ""}], (FAILED_SCHED,), PASS),
        ("Pending without any reason", [POD_OK, POD_OK | {"pod": "p3", "node": ""}], (), FAIL),
    ],
)
def test_gpu_pods_land_only_on_the_requested_class(name, pods, events, expected):
    v = check_gpu_placement(placement(pods, events), None, None, gpu_class="A100", nodes=NODES)
    assert v.status == expected, (name, v.why)


# ---------------------------------------------------------------- 9 no request lost


def lost_timeline(status_at_zero=200, status_at_drain=200):
    pods = [{"pod": "p1", "node": "n", "created": T0 + 1, "ready": T0 + 3,
             "terminating": T0 + 20, "deleted": T0 + 21}]
    ready = pd.DataFrame({"time": [T0, T0 + 3, T0 + 20], "ready": [0, 1, 0], "pods": [0, 1, 0]})
    f = replace(frames_from_series(T0, [(0, 0)], [(0, 0)], end=40), pods=pods_frame(pods),
                ready=ready)
    rec = pd.DataFrame({"start": [T0 + 0.5, T0 + 10, T0 + 19.5],
                        "latency_s": [3.0, 0.1, 0.8],
                        "status": [status_at_zero, 200, status_at_drain], "bytes": [1, 1, 1],
                        "pod": ["p1", "p1", ""],
                        "error": ["", "", "connection reset" if status_at_drain == 0 else ""]})
    return f, rec


@pytest.mark.parametrize(
    ("name", "kw", "expected", "phase"),
    [
        ("every request answered", {}, PASS, ""),
        ("503 during scale-from-zero", {"status_at_zero": 503}, FAIL, "scale-from-zero"),
        ("connection reset during scale-down", {"status_at_drain": 0}, FAIL, "scale-down"),
    ],
)
def test_no_request_is_lost(name, kw, expected, phase):
    f, rec = lost_timeline(**kw)
    v = check_no_request_lost(f, None, rec)
    assert v.status == expected, (name, v.why)
    assert phase in v.why


def test_a_phase_without_requests_is_inconclusive_never_a_pass():
    f, rec = lost_timeline()
    # the coreweave run's case: the load ended before any pod went ("scale-down: 0 sent")
    early = rec[rec["start"] < T0 + 15]
    v = check_no_request_lost(f, None, early)
    assert v.status == INCONCLUSIVE and v.failed and not v.passed
    assert "scale-down: 0 sent" in v.why
    assert v.numbers["sent_scale_down"] == 0
    # a lost request still fails, evidence or not
    lost = early.assign(status=[503, 200])
    assert check_no_request_lost(f, None, lost).status == FAIL
    # a scenario that covers one part of the claim names it
    assert check_no_request_lost(f, None, early, require=("scale-from-zero",)).status == PASS


def test_requests_the_generator_never_sent_are_not_counted_as_lost():
    f, rec = lost_timeline()
    extra = pd.DataFrame({"start": [T0 + 5], "latency_s": [math.nan], "status": [0],
                          "bytes": [0], "pod": [""], "error": ["not sent: max_in_flight"]})
    v = check_no_request_lost(f, None, pd.concat([rec, extra], ignore_index=True))
    assert v.status == PASS and v.numbers["not_sent"] == 1


def test_panic_fails_when_the_cluster_scales_no_faster_than_stable_mode():
    slow = replace(FAST, stable_window=60.0, panic_window_percentage=10.0, max_scale=10)
    load = [0.5] * 70 + [4.0] * 60
    no_panic = replace(slow, panic_threshold_percentage=math.inf)
    f, rec = model_run(no_panic, load, checked_with=slow)
    v = check_panic(f, slow, rec)
    assert v.status == FAIL, v.observed
    assert "stable mode" in v.why or "after the burst" in v.why
    f_ok, rec_ok = model_run(slow, load)
    assert check_panic(f_ok, slow, rec_ok).status == PASS


def test_panic_fails_when_the_scraped_gauge_never_shows_panic():
    f, rec = model_run(FAST, BURST)
    gauge = pd.DataFrame({"time": [T0], "panic": [False], "inferred": [False],
                          "source": ["metrics"]})
    v = check_panic(replace(f, panic=gauge), FAST, rec)
    assert v.status == FAIL and "panic gauge" in v.why
    measured = pd.DataFrame({"time": [T0, T0 + 21, T0 + 40], "panic": [False, True, False],
                             "inferred": [False] * 3, "source": ["metrics"] * 3})
    v = check_panic(replace(f, panic=measured), FAST, rec)
    assert v.status == PASS, v.why
    assert v.numbers["panic_entered_after"] == pytest.approx(1.0)


def test_scale_to_zero_earliest_follows_knative_gates_not_the_model():
    # one pod, Inactive a stable window after the last response, then the retention; the
    # earliest side's budget is the metric period + the observation latency
    p = replace(FAST, scale_down_delay=0.0)
    w, ret = p.stable_window, p.scale_to_zero_pod_retention_period
    rec = records_from_load([0.5] * 10, T0)
    a = float((rec["start"] + rec["latency_s"]).max()) - T0
    for dt, status in ((w + ret - 1.2, PASS), (w + ret - 1.7, FAIL)):
        f = series([(0, 1), (a + w, 0)], [(0, 1), (a + dt, 0)], end=a + dt + 30)
        v = check_scale_to_zero(f, p, rec)
        assert v.status == status, (dt, v.why)
        assert v.window.not_before == pytest.approx(w + ret - 1.5)


def test_scale_to_zero_counts_retention_from_the_inactive_pa_and_from_active():
    p = replace(FAST, scale_down_delay=0.0)
    rec = records_from_load([0.5] * 10, T0)
    a = float((rec["start"] + rec["latency_s"]).max()) - T0
    w, ret = p.stable_window, p.scale_to_zero_pod_retention_period
    # three pods step down first; the PA goes Inactive (desired 0) 1 s after the window
    inactive = a + w + 1
    f = series([(0, 3), (inactive - 2, 1), (inactive, 0)],
               [(0, 3), (inactive - 1, 1), (inactive + ret + 0.5, 0)], end=inactive + 60)
    v = check_scale_to_zero(f, p, rec)
    assert v.numbers["inactive_observed"] == pytest.approx(w + 1)
    assert v.status == PASS, v.why
    # zero right after it went Inactive: retention was not honoured
    g = series([(0, 3), (inactive - 2, 1), (inactive, 0)],
               [(0, 3), (inactive - 1, 1), (inactive + 1, 0)], end=inactive + 60)
    assert check_scale_to_zero(g, p, rec).status == FAIL
    # a pod that turned ready late holds the PA Active for a stable window
    late = a + 5
    zero = late + w + ret + 0.5
    h = series([(0, 1), (late + w, 0)], [(0, 0), (late, 1), (zero, 0)], end=zero + 40)
    v = check_scale_to_zero(h, p, rec)
    assert v.numbers["inactive_earliest"] == pytest.approx(5 + w)
    assert v.status == PASS, v.why
    early = series([(0, 1), (a + w, 0)], [(0, 0), (late, 1), (a + w + ret, 0)], end=zero + 40)
    assert check_scale_to_zero(early, p, rec).status == FAIL


def test_panic_exit_and_scale_down_in_one_tick_is_not_a_scale_down_while_panicking():
    # the gauge is sampled: its recorded end lags the tick that left panic and scaled down
    f = series([(0, 1), (22, 5), (60, 4)], [(0, 1), (24, 5), (61, 4)],
               panic=[(0, False), (21, True), (60.4, False)])
    v = check_panic(f, FAST, records_from_load(BURST, T0))
    assert "while panicking" not in v.why
    g = series([(0, 1), (22, 5), (58, 4)], [(0, 1), (24, 5), (59, 4)],
               panic=[(0, False), (21, True), (60.4, False)])
    assert "while panicking" in check_panic(g, FAST, records_from_load(BURST, T0)).why


def test_scale_down_delay_need_is_taken_at_the_least_favourable_bucket_phase():
    from harness.checks.autoscaling import stable_need
    from harness.checks.scale_down import need_lower_bound

    load = [0.5] * 5 + [2.3] * 8 + [0.25] * 10
    rec = records_from_load(load, T0)
    f = series([(0, 1)], [(0, 1)], end=len(load))
    p = replace(FAST, target=1.0, container_concurrency_target_percentage=100.0)
    whole = stable_need(load, p.stable_buckets, p.target_per_pod)
    lo = need_lower_bound(f, rec, p, T0, load)
    assert all(a <= b for a, b in zip(lo, whole, strict=True))
    assert all(lo[k] <= whole[k + 1] for k in range(len(load) - 1))
    assert max(lo) == max(whole)
