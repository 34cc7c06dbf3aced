"""Checks 4 and 5 (rate part): scale-up and scale-down steps against the rate bounds.

Knative bounds each decision by the *ready* pods R at the tick (``knative-kpa.md`` §6.3):
up to ``ceil(max-scale-up-rate x max(1, R))``, down to ``floor(max(1, R) /
max-scale-down-rate)``, and one pod per step in either direction is always allowed.
The ready count is read over the observation latency before each step (the
autoscaler may have seen a count the recorder had not yet), taking the most lenient.
"""

from __future__ import annotations

import math

import pandas as pd

from harness.checks.common import ParamsInput, effective
from harness.checks.verdict import (
    FAIL,
    OBSERVATION_LATENCY,
    PASS,
    Budget,
    Verdict,
    skip,
)
from harness.observe.frames import Frames
from harness.observe.series import desired_steps, one_pa, window_values

CHECK_UP = "scale-up-rate"


def max_up(rate: float, ready: float) -> int:
    """Largest desired scale one decision may ask for from ``ready`` pods."""
    r1 = max(1.0, ready)
    return int(max(math.ceil(rate * r1 - 1e-9), r1 + 1))


def min_down(rate: float, ready: float) -> int:
    """Smallest desired scale one decision may ask for from ``ready`` pods."""
    r1 = max(1.0, ready)
    return int(min(math.floor(r1 / rate + 1e-9), r1 - 1))


def check_scale_up_rate(
    frames: Frames,
    params: ParamsInput,
    records: pd.DataFrame | None = None,
    *,
    observation_latency: float = 0.5,
) -> Verdict:
    """No step up above ``max(ceil(rate x ready), ready + 1)``."""
    eff = effective(params)
    p = eff.params
    key = eff.key("max_scale_up_rate")
    claim = (f"each decision scales up to at most max({p.max_scale_up_rate:g} x ready, "
             "ready + 1) pods")
    scale = one_pa(frames.scale)
    if scale.empty:
        return skip(CHECK_UP, claim, key, "no desired scale was recorded")
    steps = desired_steps(scale)
    ups = steps[steps["after"] > steps["before"]]
    if ups.empty:
        return skip(CHECK_UP, claim, key, "the desired scale never rose")
    budget = Budget({OBSERVATION_LATENCY: observation_latency})
    rows = []
    for t, before, after in ups.itertuples(index=False):
        seen = window_values(frames.ready, t - budget.total, t, "ready") or [0]
        r = float(max(seen))
        floor_extra = max(p.min_scale, p.activation_scale if after > 0 else 0)
        limit = max(max_up(p.max_scale_up_rate, r), floor_extra)
        rows.append({"time": t, "before": before, "after": after, "ready": r, "limit": limit,
                     "ok": after <= limit})
    ev = pd.DataFrame(rows)
    bad = ev[~ev["ok"]]
    worst = bad.iloc[0] if not bad.empty else None
    return Verdict(
        CHECK_UP, claim, key, PASS if worst is None else FAIL,
        expected="every step up <= max(ceil(rate x ready), ready + 1)",
        observed=f"{len(ev)} step(s) up, {len(bad)} above the bound",
        why="" if worst is None else (
            f"{worst['before']:g} -> {worst['after']:g} pods with {worst['ready']:g} ready: "
            f"the bound is {worst['limit']:g} at rate {p.max_scale_up_rate:g}"),
        budget=budget,
        numbers={"steps": float(len(ev)), "violations": float(len(bad)),
                 "largest_step_ratio": float((ev["after"] / ev["ready"].clip(lower=1)).max())},
        evidence=pd.concat([bad, ev[ev["ok"]]]).head(100),
    )


def down_steps(frames: Frames, rate: float, latency: float) -> pd.DataFrame:
    """Every step down with the ready pods before it and its lower bound."""
    scale = one_pa(frames.scale)
    if scale.empty:
        return pd.DataFrame(columns=["time", "before", "after", "ready", "limit", "ok"])
    steps = desired_steps(scale)
    rows = []
    for t, before, after in steps[steps["after"] < steps["before"]].itertuples(index=False):
        seen = window_values(frames.ready, t - latency, t, "ready") or [0]
        r = float(min(seen))
        limit = min_down(rate, r)
        rows.append({"time": t, "before": before, "after": after, "ready": r, "limit": limit,
                     "ok": after >= limit})
    return pd.DataFrame(rows, columns=["time", "before", "after", "ready", "limit", "ok"])
