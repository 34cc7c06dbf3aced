"""Check 3, panic entry.

Burst (the measured load's panic-window average reaches the panic threshold of the ready
pods): the desired scale rises within the panic window plus the budget after the burst
began, no earlier than the burst (less the budget); when the autoscaler's ``panic_mode``
gauge was scraped, it enters panic in that same window (the decider enters panic at the
first tick whose panic-window demand is over the threshold, ``knative-kpa.md`` §6.6);
the desired scale reaches its panic peak no later than the reference model in panic mode
does plus the budget (checked when stable mode alone would be later by more than the
budget, or never gets there; slowest measured pod start-up for panic, fastest for
stable); while panicking (measured or inferred periods, less the metric period and
observation latency at their end: the decider leaves panic and scales down in one tick)
the desired scale never falls. Ramp (the threshold is never reached): no panic period at
all.
"""

from __future__ import annotations

import dataclasses
import math

import pandas as pd

from harness.checks.common import ParamsInput, effective, load_series, pod_startup_range
from harness.checks.verdict import (
    FAIL,
    METRIC_PERIOD,
    OBSERVATION_LATENCY,
    PASS,
    Budget,
    Verdict,
    Window,
    skip,
    timing_budget,
)
from harness.kpa import simulate
from harness.observe.frames import Frames
from harness.observe.series import desired_steps, one_pa, periods, step_value
from harness.params import BUCKET_SIZE

CHECK = "panic-entry"


def burst_onset(
    load: list[float], ready: list[float], window: int, target: float, threshold: float
) -> tuple[int | None, int | None]:
    """(first second whose load alone is over the threshold, first second the panic-window
    average is), or Nones for a load that never crosses it."""
    acc = 0.0
    onset = None
    for k, x in enumerate(load):
        r1 = max(1.0, ready[k])
        if onset is None and math.ceil(x / target - 1e-9) / r1 >= threshold:
            onset = k
        acc += x
        if k >= window:
            acc -= load[k - window]
        avg = acc / window
        if math.ceil(avg / target - 1e-9) / r1 >= threshold:
            return (onset if onset is not None else k), k
    return None, None


def _reach(sim: pd.DataFrame, n: float, after: float) -> float | None:
    hit = sim[(sim["t"] >= after) & (sim["desired"] >= n)]
    return None if hit.empty else float(hit["t"].iloc[0])


def check_panic(
    frames: Frames,
    params: ParamsInput,
    records: pd.DataFrame | None,
    *,
    expect: str = "auto",
    observation_latency: float = 0.5,
) -> Verdict:
    """``expect``: ``burst``, ``ramp`` or ``auto`` (decided from the measured load)."""
    eff = effective(params)
    p = eff.params
    key = eff.key("panic_threshold_percentage")
    start, load = load_series(frames, records, p)
    ready = [float(step_value(frames.ready, start + k, "ready", 0)) for k in range(len(load))]
    onset, over = burst_onset(load, ready, p.panic_buckets, p.target_per_pod, p.panic_threshold)
    mode = expect if expect != "auto" else ("burst" if onset is not None else "ramp")
    scale = one_pa(frames.scale)
    end = max(frames.end if not math.isnan(frames.end) else start, start + len(load))
    panics = periods(frames.panic, end)
    inferred = bool(frames.panic["inferred"].any()) if not frames.panic.empty else False
    src = "inferred from the trajectory" if inferred else "autoscaler metrics"
    steps = desired_steps(scale) if not scale.empty else pd.DataFrame(
        columns=["time", "before", "after"])
    # never scales down while panicking (both modes); the decider leaves panic and
    # scales down in the same tick, and a period's recorded end lags that tick by up to
    # the gauge's sampling (metric period) and the observation latency
    exit_lag = Budget({METRIC_PERIOD: BUCKET_SIZE, OBSERVATION_LATENCY: observation_latency})
    down_in_panic = [
        {"time": t, "before": b, "after": a, "panic_from": s0, "panic_to": s1}
        for t, b, a in steps.itertuples(index=False)
        for s0, s1 in panics
        if a < b and s0 < t <= s1 - exit_lag.total
    ]
    if mode == "ramp":
        claim = (f"a ramp below the panic threshold ({p.panic_threshold_percentage:g} %) "
                 "does not make the autoscaler panic")
        if onset is not None:
            return skip(CHECK, claim, key, "the load crossed the panic threshold: not a ramp")
        ev = frames.panic.copy()
        ok = not panics
        return Verdict(
            CHECK, claim, key, PASS if ok else FAIL,
            expected="no panic period",
            observed=f"{len(panics)} panic period(s) ({src})",
            why="" if ok else f"panicked at t={panics[0][0] - start:.1f} s under a ramp below "
            "the threshold",
            numbers={"panic_periods": float(len(panics))},
            evidence=ev,
        )
    claim = (
        f"a burst over {p.panic_threshold_percentage:g} % of capacity scales up within the "
        f"{p.panic_window:g} s panic window, faster than stable mode, and never scales down "
        "while panicking"
    )
    if onset is None or over is None:
        return skip(CHECK, claim, key, "the measured load never crossed the panic threshold")
    budget = timing_budget(observation_latency)
    t_on = start + onset
    r_on = ready[onset]
    window = Window(-budget.total, p.panic_window + budget.total, "burst onset", t_on)
    ups = steps[(steps["after"] > r_on) & (steps["after"] > steps["before"]) &
                (steps["time"] >= t_on - budget.total)] if not steps.empty else steps
    evidence_rows: list[dict[str, object]] = []
    numbers: dict[str, float | None] = {"onset": t_on - start, "ready_at_onset": r_on,
                                        "by": window.by, "not_before": window.not_before}
    if ups.empty:
        observed = "no scale-up after the burst"
        why = f"no scale-up by {window.by:.1f} s after the burst began"
        numbers["scale_up_after"] = None
        return Verdict(CHECK, claim, key, FAIL, expected=window.describe(), observed=observed,
                       why=why, window=window, budget=budget, numbers=numbers,
                       evidence=steps.head(50))
    t_up = float(ups["time"].iloc[0])
    dt = t_up - t_on
    numbers["scale_up_after"] = dt
    problems = []
    if not window.contains(dt):
        problems.append(f"first scale-up {dt:.1f} s after the burst, expected {window.describe()}")
    # the autoscaler's own gauge, when scraped: panic entered in the same window
    if not frames.panic.empty and not inferred:
        lo_t, hi_t = t_on + (window.not_before or 0.0), t_on + (window.by or 0.0)
        entered = [max(s0, t_on) for s0, s1 in panics if s0 <= hi_t and s1 >= t_on
                   and s1 >= lo_t]
        numbers["panic_entered_after"] = None if not entered else entered[0] - t_on
        if not entered:
            problems.append(f"the autoscaler's panic gauge did not go to 1 within "
                            f"{window.describe()}")
    # faster than stable mode would (beyond the budget)
    horizon = list(load)
    peak_end = t_on + p.stable_window
    peak = float(scale[(scale["time"] >= t_on) & (scale["time"] <= peak_end)]["desired"].max())
    if not math.isnan(peak):
        obs_reach = float(
            scale[(scale["time"] >= t_on) & (scale["desired"] >= peak)]["time"].iloc[0]) - t_on
        r0 = int(step_value(frames.ready, start, "ready", 0))
        lo_s, hi_s = pod_startup_range(frames) or (0.0, 0.0)
        stable_only = dataclasses.replace(p, panic_threshold_percentage=math.inf)
        # the earliest stable-only reach (fastest pods) vs the latest panic reach (slowest)
        sim_s = simulate(stable_only, horizon, lo_s, initial_ready=r0)
        sim_p = simulate(p, horizon, hi_s, initial_ready=r0)
        rs, rp = _reach(sim_s, peak, onset), _reach(sim_p, peak, onset)
        numbers.update(peak_desired=peak, reach_observed=obs_reach,
                       reach_stable_model=None if rs is None else rs - onset,
                       reach_panic_model=None if rp is None else rp - onset)
        distinguishable = rp is not None and (rs is None or rs - rp > budget.total)
        if distinguishable and rp is not None and obs_reach > rp - onset + budget.total:
            stable = ("" if rs is None else
                      f", as stable mode alone would ({rs - onset:.1f} s in the model)")
            problems.append(
                f"reached {peak:g} pods {obs_reach:.1f} s after the burst: later than panic "
                f"mode allows ({rp - onset:.1f} s in the model + {budget.total:g} s "
                f"budget){stable}"
            )
    if down_in_panic:
        d = down_in_panic[0]
        problems.append(
            f"scaled down {d['before']:g} -> {d['after']:g} while panicking "
            f"(t={float(d['time']) - start:.1f} s, panic {src})"
        )
        evidence_rows.extend({"problem": "down while panicking", **d} for d in down_in_panic)
    evidence_rows.extend({"problem": "", "time": t, "before": b, "after": a}
                         for t, b, a in steps.head(50).itertuples(index=False))
    return Verdict(
        CHECK, claim, key, FAIL if problems else PASS,
        expected=window.describe() + "; no scale-down while panicking",
        observed=f"scale-up {dt:.1f} s after the burst ({r_on:g} -> "
        f"{float(ups['after'].iloc[0]):g}); {len(panics)} panic period(s), {src}",
        why="; ".join(problems), window=window, budget=budget, numbers=numbers,
        evidence=pd.DataFrame(evidence_rows),
    )
