"""Check 5, scale-down: rate bound, scale-down delay, and the reference model's band.

* No step below ``min(floor(ready / max-scale-down-rate), ready - 1)``.
* scale-down-delay: the decider applies the maximum recommendation of the last
  ``delay`` seconds (``knative-kpa.md`` §6.7), so no step down comes within ``delay``
  of a higher recommendation (see :func:`delay_violations`; the load's need is taken at
  the least favourable bucket phase, :func:`need_lower_bound`); the budget is the metric
  period and the observation latency.
* The observed desired scale stays inside :func:`~harness.checks.band.reference_band`
  for the same measured load.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from harness.checks.autoscaling import stable_need
from harness.checks.band import half_second_bins, reference_band
from harness.checks.common import ParamsInput, effective, load_series, pod_startup
from harness.checks.rates import down_steps
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
from harness.observe.frames import Frames
from harness.observe.series import desired_steps, one_pa, step_value
from harness.params import BUCKET_SIZE, KPAParams

CHECK = "scale-down"


def delay_violations(
    steps: pd.DataFrame, need: list[int] | None, start: float, delay: float, lenience: float
) -> list[dict[str, object]]:
    """Steps down that came before ``delay`` of lower recommendations had passed.

    The decider applies the maximum recommendation of the last ``delay`` seconds, so a
    step down to ``a`` at ``t`` needs every recommendation in ``(t - delay, t]`` to be
    at most ``a``. Two observable lower bounds on a recommendation: a step *up* to
    ``v`` is a recommendation of ``v`` at that instant; and a recommendation is at
    least the pods the measured load's stable-window average needs (``need``, per
    second from ``start``). ``lenience`` shrinks the window on both ends.
    """
    out: list[dict[str, object]] = []
    ups = steps[steps["after"] > steps["before"]]
    for t, before, after in steps[steps["after"] < steps["before"]].itertuples(index=False):
        lo, hi = t - delay + lenience, t - lenience
        hit = ups[(ups["time"] > lo) & (ups["time"] < t) & (ups["after"] > after)]
        if not hit.empty:
            tu = float(hit["time"].iloc[-1])
            out.append({"time": t, "before": before, "after": after, "held_s": t - tu,
                        "evidence": f"a step up to {float(hit['after'].iloc[-1]):g}",
                        "problem": "before scale-down-delay"})
            continue
        if need is None:
            continue
        for k in range(int(math.ceil(lo - start)), int(math.floor(hi - start)) + 1):
            # the tick at start + k averages the buckets before it: need[k - 1]
            if 1 <= k <= len(need) and need[k - 1] > after:
                out.append({"time": t, "before": before, "after": after,
                            "held_s": t - (start + k),
                            "evidence": f"the load needed {need[k - 1]} pods",
                            "problem": "before scale-down-delay"})
                break
    return out


def need_lower_bound(
    frames: Frames, records: pd.DataFrame, p: KPAParams, start: float, load: list[float]
) -> list[int]:
    """Per second, the fewest pods the stable-window average of the measured load needs
    at any phase of the autoscaler's 1 s buckets against the harness's bins: the least of
    that second's and the next second's need on whole-second bins and the need on
    half-second bins in between (a recommendation is at least this)."""
    w, t = p.stable_buckets, p.target_per_pod
    whole = stable_need(load, w, t)
    half_load = half_second_bins(frames, records, p, start, len(load))
    half = stable_need(half_load, w, t) if half_load is not None else whole
    n = len(whole)
    return [min(whole[k], whole[min(k + 1, n - 1)], half[k]) for k in range(n)]


def out_of_band(frames: Frames, band: pd.DataFrame) -> pd.DataFrame:
    """Seconds where the observed desired scale is outside ``[lower, upper]``."""
    scale = one_pa(frames.scale)
    valid = scale[scale["desired"].notna() & (scale["desired"] >= 0)]
    if valid.empty or band.empty:
        return pd.DataFrame(columns=["time", "desired", "lower", "upper"])
    first = float(valid["time"].iloc[0])
    obs = np.array([float(step_value(valid, t, "desired", np.nan)) for t in band["time"]])
    mask = (band["time"].to_numpy() >= first) & (
        (obs < band["lower"].to_numpy()) | (obs > band["upper"].to_numpy())
    )
    out = band.loc[mask, ["time", "lower", "upper"]].copy()
    out.insert(1, "desired", obs[mask])
    return out.reset_index(drop=True)


def check_scale_down(
    frames: Frames,
    params: ParamsInput,
    records: pd.DataFrame | None,
    *,
    observation_latency: float = 0.5,
    band: pd.DataFrame | None = None,
) -> Verdict:
    eff = effective(params)
    p = eff.params
    key = f"{eff.key('max_scale_down_rate')}, {eff.key('scale_down_delay')}"
    claim = (
        f"scale-down removes at most what max-scale-down-rate {p.max_scale_down_rate:g} allows "
        f"per decision (at least one pod), each step only after scale-down-delay "
        f"{p.scale_down_delay:g} s, and follows the reference model"
    )
    scale = one_pa(frames.scale)
    if scale.empty:
        return skip(CHECK, claim, key, "no desired scale was recorded")
    downs = down_steps(frames, p.max_scale_down_rate, observation_latency)
    problems: list[str] = []
    rows: list[pd.DataFrame] = []
    bad_rate = downs[~downs["ok"].astype(bool)] if not downs.empty else downs
    if not bad_rate.empty:
        w = bad_rate.iloc[0]
        problems.append(
            f"{w['before']:g} -> {w['after']:g} pods with {w['ready']:g} ready: at rate "
            f"{p.max_scale_down_rate:g} no step may go below {w['limit']:g}"
        )
        rows.append(bad_rate.assign(problem="below rate bound"))
    # scale-down-delay: each step down needs a full delay of lower recommendations
    delay_budget = Budget({METRIC_PERIOD: BUCKET_SIZE, OBSERVATION_LATENCY: observation_latency})
    window = None
    early: list[dict[str, object]] = []
    if p.scale_down_delay > 0:
        window = Window(p.scale_down_delay - delay_budget.total, None,
                        "the last higher recommendation")
        start, load = load_series(frames, records, p)
        need = need_lower_bound(frames, records, p, start, load) if records is not None \
            and not records.empty else None
        early = delay_violations(desired_steps(scale), need, start, p.scale_down_delay,
                                 delay_budget.total)
        if early:
            e = early[0]
            problems.append(
                f"{e['before']:g} -> {e['after']:g} only {e['held_s']:.1f} s after "
                f"{e['evidence']}; scale-down-delay is {p.scale_down_delay:g} s"
            )
            rows.append(pd.DataFrame(early))
    # the reference model's band
    startup = pod_startup(frames)
    budget = timing_budget(observation_latency, startup)
    if band is None:
        band = reference_band(frames, params, records, budget=budget)
    outside = out_of_band(frames, band)
    if not outside.empty:
        o = outside.iloc[0]
        problems.append(
            f"desired {o['desired']:g} outside the model's band [{o['lower']:g}, "
            f"{o['upper']:g}] for {len(outside)} s, first at "
            f"t={o['time'] - band['time'].iloc[0]:.0f} s"
        )
        rows.append(outside.assign(problem="outside the model band"))
    if downs.empty and outside.empty:
        return skip(CHECK, claim, key, "the desired scale never fell", budget=budget)
    return Verdict(
        CHECK, claim, key, FAIL if problems else PASS,
        expected=(f"steps >= min(floor(ready / {p.max_scale_down_rate:g}), ready - 1); "
                  + (f"{window.describe()} (budget {delay_budget.describe()})" if window
                     else "no delay") + "; inside the model band"),
        observed=(f"{len(downs)} step(s) down, {len(bad_rate)} below the rate bound, "
                  f"{len(early)} before the delay, {len(outside)} s outside the band"),
        why="; ".join(problems), window=window, budget=budget,
        numbers={"steps_down": float(len(downs)), "rate_violations": float(len(bad_rate)),
                 "delay_violations": float(len(early)), "seconds_out_of_band": float(len(outside))},
        evidence=pd.concat(rows, ignore_index=True) if rows else downs,
    )
