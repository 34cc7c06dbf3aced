"""Check 6, scale to zero.

Knative's gates (``knative-kpa.md`` §8-9): the PA goes Inactive no earlier than a full
stable window of zero observed load after the last response plus the scale-down-delay
in force (the delay window counts from the last non-zero recommendation, one tick before
the first zero one: :func:`delay_in_force`), and
than a stable window after it turned Active (:func:`inactive_earliest`); the Inactive PA
(seen as ``desiredScale`` 0; from more pods the rate bound steps down first) keeps its
pods ``retention`` (the activator fast path may skip the grace) and at most
``max(grace, retention)``. From one pod that is stable window + delay + retention up to
stable window + delay + max(grace, retention) (``harness.findings.time_to_zero``). Each
side has its own named budget: the earliest side loses the metric period (the last
request's 1 s bucket can start up to 1 s before it ended) and the observation latency
(the recorder's and the client's clocks); the latest side counts from the last of those
gates and one pod left (:func:`one_pod_left`) and gains the decision tick (zero load is
acted on at the next 2 s tick) and the actuation (patch, Deployment, pod deletion). When
the reference model on the measured load takes longer (more pods step down first), its
latest time (over the measured pod start-ups and tick phase) extends the deadline. The
effective retention is the revision's annotation when it sets one (the claim key says
which). With minReplicas >= 1 (or scale to zero disabled) zero is never reached.
"""

from __future__ import annotations

import math

import pandas as pd

from harness.checks.common import ParamsInput, effective, load_series, pod_startup_range
from harness.checks.verdict import (
    ACTUATION,
    DEFAULT_ACTUATION,
    FAIL,
    PASS,
    Budget,
    Verdict,
    Window,
    skip,
    timing_budget,
)
from harness.findings import time_to_zero
from harness.kpa import simulate
from harness.observe.frames import Frames
from harness.observe.load import sent
from harness.observe.series import one_pa, step_value
from harness.params import TICK_INTERVAL, KPAParams

CHECK = "scale-to-zero"


def last_response(records: pd.DataFrame | None) -> float | None:
    if records is None or records.empty:
        return None
    recs = sent(records)
    if recs.empty:
        return None
    return float((recs["start"] + recs["latency_s"].fillna(0.0)).max())


def first_zero(ready: pd.DataFrame, after: float) -> float | None:
    """First time at or after ``after`` when no pod is ready (and none is left running)."""
    if ready.empty:
        return None
    if step_value(ready, after, "ready", None) == 0:
        later = ready[(ready["time"] > after) & (ready["ready"] > 0)]
        if later.empty:
            return after
        after = float(later["time"].iloc[0])  # the pod was seen ready after the response
    hit = ready[(ready["time"] > after) & (ready["ready"] == 0)]
    return None if hit.empty else float(hit["time"].iloc[0])


def active_since(ready: pd.DataFrame, anchor: float) -> float | None:
    """When the pods serving the last request became ready after a scale from zero (the
    PA turned Active), or None when they were ready before the recording began."""
    if ready.empty:
        return None
    before = ready[ready["time"] <= anchor]
    zeros = before[before["ready"] == 0]
    if zeros.empty:
        return None
    up = ready[(ready["time"] > float(zeros["time"].iloc[-1])) & (ready["ready"] > 0)]
    return None if up.empty else float(up["time"].iloc[0])


def delay_in_force(p: KPAParams) -> float:
    """The shortest time the scale-down-delay window holds a non-zero recommendation
    after the first zero one (``knative-kpa.md`` §6.7): the window keeps
    ``ceil(delay / 2 s)`` tick slots and the last non-zero value was recorded one tick
    before the first zero, so the zero comes out ``(ceil(delay / 2 s) - 1) x 2 s`` later
    (2 s for a 4 s delay, 58 s for 60 s: coreweave's 238 s from one pod)."""
    if p.scale_down_delay <= 0:
        return 0.0
    return TICK_INTERVAL * (math.ceil(p.scale_down_delay / TICK_INTERVAL) - 1)


def inactive_earliest(
    ready: pd.DataFrame, p: KPAParams, anchor: float, *, delay: float | None = None
) -> float:
    """Seconds from the last response to the earliest moment the PA can go Inactive
    (``knative-kpa.md`` §8.3, §9): a stable window of zero load plus the delay in force
    (:func:`delay_in_force`; ``delay`` overrides it), and a stable window after it
    turned Active."""
    gates = [p.stable_window + (delay_in_force(p) if delay is None else delay)]
    active = active_since(ready, anchor)
    if active is not None:
        gates.append(active - anchor + p.stable_window)
    return max(gates)


def one_pod_left(ready: pd.DataFrame, anchor: float) -> float | None:
    """Seconds from the last response to the first time at most one pod was ready, when
    more were ready at it: the zero recommendation needs ``floor(1 / rate) = 0``, so
    from more pods the rate bound steps down first (§6.3), or None."""
    if ready.empty or step_value(ready, anchor, "ready", 0) <= 1:
        return None
    hit = ready[(ready["time"] >= anchor) & (ready["ready"] <= 1)]
    return None if hit.empty else float(hit["time"].iloc[0]) - anchor


def inactive_observed(scale: pd.DataFrame, anchor: float) -> float | None:
    """Seconds from the last response to the PA's first ``desiredScale`` 0 after it (it
    reports 0 exactly when it goes Inactive and keeps its pods), or None."""
    if scale.empty:
        return None
    s = one_pa(scale)
    hit = s[(s["time"] >= anchor) & (s["desired"] == 0)]
    return None if hit.empty else float(hit["time"].iloc[0]) - anchor


def model_time_to_zero(
    frames: Frames, p: KPAParams, records: pd.DataFrame | None, anchor: float, hi: float
) -> tuple[float | None, float | None]:
    """Seconds from ``anchor`` to zero in the reference model on the measured load:
    (earliest, latest) over the measured pod start-ups and a one-second tick phase."""
    start, load = load_series(frames, records, p)
    r0 = int(step_value(frames.ready, start, "ready", 0))
    lo_s, hi_s = pod_startup_range(frames) or (0.0, 0.0)
    found = []
    for startup in {lo_s, hi_s}:
        for shift in (0, 1):
            trace = [load[0]] * shift + list(load)
            sim = simulate(p, trace, startup, initial_ready=r0, until=len(trace) + hi + 60)
            gone = sim[(sim["t"] + start - shift >= anchor) & (sim["ready"] == 0)
                       & (sim["desired"] == 0)]
            if not gone.empty:
                found.append(float(gone["t"].iloc[0]) - shift + start - anchor)
    return (min(found), max(found)) if found else (None, None)


def check_scale_to_zero(
    frames: Frames,
    params: ParamsInput,
    records: pd.DataFrame | None,
    *,
    observation_latency: float = 0.5,
) -> Verdict:
    eff = effective(params)
    p = eff.params
    key = eff.key("scale_to_zero_pod_retention_period")
    anchor = last_response(records)
    end = frames.end
    if p.min_scale >= 1 or not p.enable_scale_to_zero:
        claim = (f"minReplicas {p.min_scale} (enable-scale-to-zero "
                 f"{str(p.enable_scale_to_zero).lower()}): the service never scales to zero")
        key = eff.key("min_scale")
        if frames.ready.empty:
            return skip(CHECK, claim, key, "no pods were recorded")
        seen = frames.ready[frames.ready["ready"] > 0]
        if seen.empty:
            return skip(CHECK, claim, key, "no pod was ever ready")
        zero = first_zero(frames.ready, float(seen["time"].iloc[0]))
        lo, _ = time_to_zero(p)
        held = end - (anchor if anchor is not None else float(seen["time"].iloc[0]))
        if zero is None and held < lo:
            return skip(CHECK, claim, key,
                        f"recorded only {held:.1f} s after the last request, less than the "
                        f"{lo:g} s a scale to zero would take")
        ok = zero is None
        return Verdict(
            CHECK, claim, key, PASS if ok else FAIL,
            expected="ready pods never 0",
            observed="stayed >= 1" if ok else f"0 ready at t={zero - frames.start:.1f} s",
            why="" if ok else "reached zero ready pods although minReplicas >= 1",
            numbers={"min_scale": p.min_scale, "held_s": held},
            evidence=frames.ready[frames.ready["ready"] == 0] if not ok else frames.ready.tail(5),
        )
    lo, hi = time_to_zero(p)
    claim = (
        f"scale to zero {lo:g} s after the last request (stable window {p.stable_window:g} s "
        f"+ scale-down-delay {p.scale_down_delay:g} s + retention "
        f"{p.scale_to_zero_pod_retention_period:g} s)"
    )
    if anchor is None:
        return skip(CHECK, claim, key, "no request records: no last request to measure from")
    inactive = inactive_earliest(frames.ready, p, anchor)
    inactive_latest = inactive_earliest(frames.ready, p, anchor, delay=p.scale_down_delay)
    # not before: the retention runs from the Inactive PA; when the recorder saw it go
    # Inactive (from more pods the rate bound steps down first), not before that either
    seen = inactive_observed(frames.scale, anchor)
    early = timing_budget(observation_latency, tick=False)
    retention, grace = p.scale_to_zero_pod_retention_period, p.scale_to_zero_grace_period
    not_before = max(inactive, seen or 0.0) + retention - early.total
    # by: Inactive at the first tick once the load's window is zero and one pod is left
    # (each held for the delay), then max(grace, retention) and the pod's deletion
    one = one_pod_left(frames.ready, anchor)
    latest = max(inactive_latest, (one or 0.0) + p.scale_down_delay)
    budget = Budget({**timing_budget(observation_latency).terms,
                     ACTUATION: DEFAULT_ACTUATION})
    by = latest + max(grace, retention) + budget.total
    model_lo, model_hi = model_time_to_zero(frames, p, records, anchor, hi)
    if model_hi is not None:
        # more pods than one step down first: the model's variants cover the tick phase
        by = max(by, model_hi + timing_budget(observation_latency, tick=False).total)
    window = Window(not_before, by, "last response", anchor)
    model = model_hi
    zero = first_zero(frames.ready, anchor)
    numbers: dict[str, float | None] = {
        "not_before": window.not_before, "by": window.by, "formula_lo": lo, "formula_hi": hi,
        "model": model, "model_lo": model_lo, "inactive_earliest": inactive,
        "inactive_observed": seen, "one_pod_left": one,
        "budget_not_before": early.total, "observed": None if zero is None else zero - anchor,
    }
    if zero is None:
        if math.isnan(end) or end - anchor < (window.by or 0):
            return skip(CHECK, claim, key,
                        f"recording ended {end - anchor:.1f} s after the last response, before "
                        f"the {window.by:.1f} s deadline", window=window, budget=budget,
                        expected=window.describe(), numbers=numbers)
        return Verdict(CHECK, claim, key, FAIL, expected=window.describe(),
                       observed=f"still {int(step_value(frames.ready, end, 'ready', 0))} ready "
                       f"{end - anchor:.1f} s after the last response",
                       why=f"not at zero by {window.by:.1f} s", window=window, budget=budget,
                       numbers=numbers, evidence=frames.ready.tail(20))
    dt = zero - anchor
    ok = window.contains(dt)
    why = ""
    if not ok:
        why = (f"zero {dt:.1f} s after the last response, before the earliest "
               f"{window.not_before:.1f} s (retention {p.scale_to_zero_pod_retention_period:g} s "
               "not honoured)" if dt < (window.not_before or 0) else
               f"zero only {dt:.1f} s after the last response, deadline {window.by:.1f} s")
    ev = frames.ready[frames.ready["time"] >= anchor - 1].head(30)
    return Verdict(CHECK, claim, key, PASS if ok else FAIL, expected=window.describe(),
                   observed=f"zero {dt:.1f} s after the last response", why=why, window=window,
                   budget=budget, numbers=numbers, evidence=ev)
