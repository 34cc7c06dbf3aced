"""End-to-end behaviour of the reference model in virtual time, including the worked
examples of knative-kpa.md §11 with the CoreWeave parameter set."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from harness.kpa import simulate
from harness.params import KPAParams

# CoreWeave values (knative-kpa.md §11); TBC stays at Knative's 211.
CW = KPAParams(
    stable_window=180,
    container_concurrency_target_percentage=0.85,
    max_scale_up_rate=20,
    max_scale_down_rate=1.1,
    scale_down_delay=60,
    scale_to_zero_pod_retention_period=1800,
    container_concurrency=1,
)


def first_t(df: pd.DataFrame, mask: pd.Series) -> int:
    hits = df.loc[mask, "t"]
    assert not hits.empty, "never happened"
    return int(hits.iloc[0])


def test_coreweave_panic_window_is_18_seconds():
    assert CW.panic_window == 18.0
    assert (CW.stable_buckets, CW.panic_buckets) == (180, 18)
    assert CW.target_per_pod == 0.85 and CW.total_per_pod == 1.0


def test_scale_down_from_10_pods_moves_one_pod_per_60s_with_the_coreweave_delay():
    df = simulate(CW, [0.0] * 700, initial_ready=10, history=8.5)
    assert df["desired"].diff().dropna().min() >= -1  # never more than one pod per tick
    # 10 -> 9 waits for dspc 9 at t=18 (S = 8.5 x 162/180 = 7.65) plus the 60 s window
    # of earlier 10s (last one at t=16, gone at t=76); every later step needs its own 60 s.
    steps = {n: first_t(df, df["desired"] <= n) for n in range(9, -1, -1)}
    assert steps == {9: 76, 8: 136, 7: 196, 6: 256, 5: 316, 4: 376, 3: 436, 2: 496, 1: 556,
                     0: 616}
    assert first_t(df, df["decider"] == 0) == 616
    # ready pods follow at once (no start-up on the way down)
    row = df[df["t"] == 78].iloc[0]
    assert (row["ready"], row["replicas"]) == (9, 9)
    # at 0 the PA is Inactive and the last pod is kept for the 30 min retention
    last = df.iloc[-1]
    assert (last["desired"], last["replicas"], last["pa_state"]) == (0, 1, "Inactive")


def test_scale_down_without_delay_follows_the_stable_average_one_pod_per_18s():
    df = simulate(replace(CW, scale_down_delay=0), [0.0] * 200, initial_ready=10, history=8.5)
    # dspc = ceil(10 (180 - t) / 180) <= n from t = 180 - 18 n (the tick is even)
    for n in range(9, -1, -1):
        assert first_t(df, df["decider"] <= n) == 180 - 18 * n, n


def test_one_pod_goes_to_zero_about_34_minutes_after_traffic_stops():
    df = simulate(CW, [0.0] * 2100, initial_ready=1, history=0.5)
    # S reaches 0 at t=180 (a full window of zeros); the 1 recorded at t=178 leaves the
    # 60 s delay window at t=238; the PA goes Inactive at once (Active for > 180 s).
    t0 = first_t(df, df["decider"] == 0)
    assert t0 == 238
    assert first_t(df, df["pa_state"] == "Inactive") == 238
    # the last pod is kept: desiredScale 0, one ready pod, for the 30 min retention
    kept = df[(df["t"] >= 238) & (df["t"] < 2038)]
    assert (kept["desired"] == 0).all() and (kept["ready"] == 1).all()
    assert (kept["sks_mode"] == "Proxy").all()
    t_zero = first_t(df, df["replicas"] == 0)
    assert t_zero == 238 + 1800 == 2038  # about 34 minutes
    assert df[df["t"] > t_zero]["ready"].max() == 0


def test_without_retention_the_proxy_fast_path_removes_the_pod_at_once():
    params = replace(CW, scale_to_zero_pod_retention_period=0)
    df = simulate(params, [0.0] * 300, initial_ready=1, history=0.5)
    # TBC 211 kept the SKS in Proxy all along, so ProxyFor >= grace already
    assert first_t(df, df["replicas"] == 0) == 238


@pytest.mark.parametrize(
    ("concurrency", "after"),
    [
        # P(k) = (1 + C k) / 18 (the activator's first stat adds 1 at the step);
        # 10 pods need P > 7.65 = 137.7 / 18
        (8.5, 18),  # 8.5 k + 1 > 137.7 -> k > 16.1
        (10.0, 14),  # k > 13.67
        (20.0, 8),  # k > 6.8
        (69.0, 2),  # 2 x 69 + 1 = 139 > 137.7: the first tick
        (68.0, 4),  # 137 < 137.7: not yet
    ],
)
def test_burst_from_one_warm_pod_reaches_10_pods_as_the_panic_window_fills(concurrency, after):
    step = 20
    df = simulate(CW, [0.0] * step + [concurrency] * 60, initial_ready=1, history=0.0)
    assert first_t(df, df["decider"] >= 10) - step == after
    assert first_t(df, df["panic_mode"]) == step + 2  # dppc / 1 >= 2 on the first tick


def test_burst_of_8_5_climbs_one_pod_per_tick():
    df = simulate(CW, [0.0] * 20 + [8.5] * 30, initial_ready=1, history=0.0)
    climb = df[(df["t"] >= 22) & (df["t"] <= 38)]["decider"].tolist()
    # ceil((1 + 8.5 k) / 18 / 0.85) for k = 2, 4, ..., 18
    assert climb == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert df["ready"].max() == 10


def test_scale_from_zero_pokes_the_decider_with_the_activators_first_stat():
    df = simulate(CW, [0.0] * 11 + [10.0] * 60, 30.0, initial_ready=0)
    poke = df[df["poke"]]
    assert poke["t"].tolist() == [11]  # odd second: not a regular tick
    row = poke.iloc[0]
    # S = P = 1 (a fresh partial window): ceil(1 / 0.85) = 2, and 2 / R1 >= 2 -> panic
    assert (row["decider"], row["desired"], row["replicas"]) == (2, 2, 2)
    assert row["panic_mode"] and row["pa_state"] == "Activating"
    # t=14: buckets 11..14 = 1, 10, 10, 10 -> 7.75 -> ceil(9.1) = 10
    assert first_t(df, df["decider"] >= 10) == 14
    # pods start in 30 s: the 2 poked pods are ready at 41, the PA is Active by then
    assert first_t(df, df["ready"] >= 2) == 42
    assert df[df["t"] == 42].iloc[0]["pa_state"] == "Active"


def test_nothing_is_recorded_at_zero_pods_without_traffic():
    df = simulate(CW, [0.0] * 400, initial_ready=0)
    assert not df["valid"].any()  # no data for more than a window: invalid ticks
    assert (df["decider"] == 0).all() and (df["replicas"] == 0).all()


def test_pod_startup_delays_ready_pods_not_the_decision():
    load = [0.0] * 20 + [8.5] * 80
    fast = simulate(CW, load, 0.0, initial_ready=1, history=0.0)
    slow = simulate(CW, load, 15.0, initial_ready=1, history=0.0)
    # with slow pods the ready count lags; fewer ready pods make panic see a larger
    # ratio, never a smaller decision
    assert first_t(slow, slow["ready"] >= 2) == first_t(fast, fast["replicas"] >= 2) + 16
    assert (slow["decider"].to_numpy() >= fast["decider"].to_numpy()).all()


def test_hold_ready_keeps_ready_pods_fixed_whatever_is_decided():
    df = simulate(CW, [20.0] * 100, initial_ready=3, hold_ready=True, history=0.0)
    assert (df["ready"] == 3).all()
    assert df["replicas"].max() > 3
    # rate bound from the held 3 pods: ceil(20 x 3) = 60; dppc = ceil(20 / 0.85) = 24
    assert df["decider"].max() == 24


def test_fresh_revision_over_several_pods_starts_in_panic_for_a_stable_window():
    params = replace(CW, scale_down_delay=0)
    df = simulate(params, [0.0] * 200, initial_ready=3, fresh=True)
    assert df[df["t"] <= 180]["panic_mode"].all()
    assert (df[df["t"] <= 180]["decider"] == 3).all()  # start-up panic keeps 3
    # un-panic at 182: floor(3 / 1.1) = 2
    assert df[df["t"] == 182].iloc[0]["decider"] == 2


def test_old_revision_is_not_in_panic_at_the_start():
    params = replace(CW, scale_down_delay=0)
    df = simulate(params, [0.0] * 10, initial_ready=3, history=0.0)
    assert not df["panic_mode"].any()
    assert df.iloc[0]["decider"] == 2  # floor(3 / 1.1)


def test_fresh_revision_starts_its_first_pod_and_becomes_active():
    df = simulate(CW, [0.0] * 40, 10.0, initial_ready=0, fresh=True)
    first = df.iloc[0]
    # no pod to scrape yet: no data, the decider value stays unknown (-1)
    assert (first["replicas"], first["pa_state"], first["decider"]) == (1, "Activating", -1)
    assert first_t(df, df["pa_state"] == "Active") == 10
    # zero load from then on: Active for a stable window before the PA may go Inactive
    assert first_t(df, df["decider"] == 0) == 10
    assert (df["replicas"] == 1).all()


def test_min_scale_keeps_pods_and_max_scale_caps_desired_not_decider():
    params = replace(CW, min_scale=2, max_scale=5)
    df = simulate(params, [0.0] * 10 + [20.0] * 60, initial_ready=2, history=0.0)
    assert df["desired"].min() == 2 and df["desired"].max() == 5
    assert df["decider"].max() > 5
    assert df["ready"].max() == 5


def test_tbc_zero_serves_directly_and_tbc_minus_one_always_proxies():
    load = [5.0] * 60
    serve = simulate(replace(CW, target_burst_capacity=0), load, initial_ready=6, history=5.0)
    assert (serve["sks_mode"] == "Serve").all() and (serve["ebc"] == 0).all()
    proxy = simulate(replace(CW, target_burst_capacity=-1), load, initial_ready=6, history=5.0)
    assert (proxy["sks_mode"] == "Proxy").all() and (proxy["ebc"] == -1).all()
    assert (proxy["stable"] == 5.0).all()


def test_ebc_turns_positive_when_spare_capacity_exceeds_tbc():
    params = replace(CW, target_burst_capacity=5)
    df = simulate(params, [2.0] * 30, initial_ready=10, history=2.0)
    # floor(10 x 1 - 5 - 2) = 3 >= 0: the activator leaves the path
    assert df.iloc[0]["ebc"] == 3 and df.iloc[-1]["sks_mode"] == "Serve"


def test_weighted_exponential_reacts_faster_than_linear():
    params = replace(CW, metric_aggregation_algorithm="weighted-exponential")
    load = [0.0] * 20 + [8.5] * 40
    weighted = simulate(params, load, initial_ready=1, history=0.0)
    linear = simulate(CW, load, initial_ready=1, history=0.0)
    assert first_t(weighted, weighted["decider"] >= 10) < first_t(linear, linear["decider"] >= 10)


def test_rps_metric_scales_on_requests_per_second():
    params = replace(CW, metric="rps", target=10.0)  # T = 10 x 0.7 = 7
    df = simulate(params, [70.0] * 60, initial_ready=10, history=70.0)
    assert (df["decider"] == 10).all()


def test_columns_and_one_row_per_tick():
    df = simulate(CW, [1.0] * 21, initial_ready=1)
    assert list(df.columns[:10]) == ["t", "load", "ready", "replicas", "stable", "panic",
                                     "decider", "desired", "panic_mode", "ebc"]
    assert df["t"].tolist() == list(range(2, 22, 2))


def test_a_day_simulates_in_well_under_a_few_seconds():
    import time

    start = time.perf_counter()
    df = simulate(CW, [5.0] * 86_400, initial_ready=6, history=5.0)
    assert len(df) == 43_200
    assert time.perf_counter() - start < 5.0


def test_the_coreweave_knobs_used_here_are_the_shipped_profile():
    from dataclasses import fields

    from harness.resolve import resolve

    shipped = resolve(profile="coreweave").params
    for f in fields(CW):
        if f.name not in {"min_scale", "max_scale"}:  # the profile's InferenceService bounds
            assert getattr(CW, f.name) == getattr(shipped, f.name), f.name
