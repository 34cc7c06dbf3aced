"""The reference model's band for a measured run.

:func:`reference_band` runs :func:`harness.kpa.simulate` on the measured per-second
load, once per variant of the unknowns the measurement cannot pin down: pod start-up
(the fastest and slowest measured pod), the phase of the 2 s decider tick against the
load (the load as measured, and one second later) and the phase of the autoscaler's 1 s
metric buckets against the harness's per-second bins (bins on whole seconds, and on half
seconds, each half-second variant's second ``k`` read as ``k``): together the tick and
bucket phases in half-second steps. Per second, ``lower``/``upper`` are the least and
greatest desired scale of any variant, widened in time by the error budget (each bound
taken over ``[t - budget, t + budget]``). ``model`` is the variant with the median
measured start-up and no shift.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from harness.checks.common import (
    ParamsInput,
    effective,
    load_series,
    pod_startup_range,
    timeline_end,
)
from harness.checks.verdict import Budget, timing_budget
from harness.kpa import simulate
from harness.observe.frames import Frames
from harness.observe.load import offered_load
from harness.observe.series import step_value
from harness.params import KPAParams

BAND_COLUMNS: tuple[str, ...] = ("time", "lower", "upper", "model", "model_ready", "load")
"""``time`` epoch s (one row per second); ``lower``/``upper`` the band of desired scale;
``model`` the central variant's desired scale and ``model_ready`` its ready pods;
``load`` the measured load (concurrency or rps) of that second."""


def _per_second(sim: pd.DataFrame, n: int, col: str, first: float) -> np.ndarray:
    out = np.full(n, first, dtype=float)
    ts = sim["t"].to_numpy(int)
    vals = sim[col].to_numpy(float)
    for t, v in zip(ts, vals, strict=True):
        if 0 <= t < n and v >= 0:
            out[t:] = v
    return out


def half_second_bins(
    frames: Frames, records: pd.DataFrame | None, p: KPAParams, start: float, n: int
) -> list[float] | None:
    """The measured load binned on half seconds (``start + 0.5 + k``), ``n`` values."""
    if records is None or records.empty:
        return None
    end = timeline_end(frames, records)
    df = offered_load(records, start + 0.5, max(end, start + 1.5))
    vals = [float(x) for x in df["rps" if p.metric == "rps" else "concurrency"]]
    return (vals + [0.0] * n)[:n]


def reference_band(
    frames: Frames,
    params: ParamsInput,
    records: pd.DataFrame | None,
    *,
    budget: Budget | None = None,
) -> pd.DataFrame:
    """Band of the reference model's desired scale over the run (:data:`BAND_COLUMNS`)."""
    p = effective(params).params
    start, load = load_series(frames, records, p)
    n = len(load)
    budget = budget or timing_budget()
    if frames.ready.empty:
        ready0 = 0
    else:
        r = step_value(frames.ready, start, "ready", None)
        ready0 = int(frames.ready["ready"].iloc[0] if r is None else r)
    lo_s, hi_s = pod_startup_range(frames) or (0.0, 0.0)
    mid_s = (lo_s + hi_s) / 2.0
    half = half_second_bins(frames, records, p, start, n)
    variants = []
    for startup in sorted({lo_s, mid_s, hi_s}):
        for shift in (0, 1):
            for base in ([load] if half is None else [load, half]):
                trace = [base[0]] * shift + base[: n - shift] if shift else list(base)
                variants.append((startup, shift if base is load else shift + 0.5, trace))
    curves = []
    model = model_ready = None
    for startup, shift, trace in variants:
        sim = simulate(p, trace, startup, initial_ready=ready0, until=n - 1)
        curve = _per_second(sim, n, "desired", float(ready0))
        curves.append(curve)
        if shift == 0 and startup == mid_s:
            model = curve
            model_ready = _per_second(sim, n, "ready", float(ready0))
    stack = np.vstack(curves)
    lower, upper = stack.min(axis=0), stack.max(axis=0)
    slack = int(math.ceil(budget.total))
    lo_w = np.array([lower[max(0, i - slack): i + slack + 1].min() for i in range(n)])
    hi_w = np.array([upper[max(0, i - slack): i + slack + 1].max() for i in range(n)])
    return pd.DataFrame(
        {
            "time": start + np.arange(n, dtype=float),
            "lower": lo_w,
            "upper": hi_w,
            "model": model,
            "model_ready": model_ready,
            "load": np.asarray(load, dtype=float),
        }
    )
