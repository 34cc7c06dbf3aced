"""Check 2: autoscaling is on exactly when minReplicas != maxReplicas.

min == max: under any load the desired scale stays at that value and ready pods never
exceed it. min != max: when the measured load's stable-window average needs more pods
than were desired before it, the desired scale rises.
"""

from __future__ import annotations

import math

import pandas as pd

from harness.checks.common import ParamsInput, effective, load_series
from harness.checks.verdict import FAIL, PASS, Verdict, skip
from harness.observe.frames import Frames
from harness.observe.series import one_pa

CHECK = "autoscaling-enabled"


def stable_need(load: list[float], window: int, target: float) -> list[int]:
    """Pods the stable-window average of ``load`` needs, per second."""
    out, acc = [], 0.0
    for k, x in enumerate(load):
        acc += x
        if k >= window:
            acc -= load[k - window]
        avg = acc / min(window, k + 1)
        out.append(int(math.ceil(avg / target - 1e-9)))
    return out


def check_autoscaling_enabled(
    frames: Frames, params: ParamsInput, records: pd.DataFrame | None
) -> Verdict:
    eff = effective(params)
    p = eff.params
    key = f"{eff.key('min_scale')} / {eff.key('max_scale')}"
    fixed = p.max_scale > 0 and p.min_scale == p.max_scale
    claim = (
        f"minReplicas == maxReplicas ({p.min_scale}): autoscaling is off, no scaling under load"
        if fixed
        else f"minReplicas {p.min_scale} != maxReplicas {p.max_scale or 'unlimited'}: "
        "autoscaling is on"
    )
    scale = one_pa(frames.scale)
    valid = scale[scale["desired"].notna() & (scale["desired"] >= 0)] if not scale.empty else scale
    if valid.empty:
        return skip(CHECK, claim, key, "no desired scale was recorded")
    start, load = load_series(frames, records, p)
    need = stable_need(load, p.stable_buckets, p.target_per_pod)
    peak_need = max(need) if need else 0
    if fixed:
        bad = valid[valid["desired"] != p.min_scale]
        over = frames.ready[frames.ready["ready"] > p.max_scale]
        evidence = pd.concat(
            [bad.assign(problem="desired != min"), over.assign(problem="ready > max")],
            ignore_index=True,
        )
        if peak_need <= p.min_scale and evidence.empty:
            return skip(CHECK, claim, key,
                        f"the load never needed more than {p.min_scale} pod(s): no burst offered",
                        observed=f"peak need {peak_need} pod(s)")
        ok = evidence.empty
        return Verdict(
            CHECK, claim, key, PASS if ok else FAIL,
            expected=f"desired stays {p.min_scale}, ready <= {p.max_scale}",
            observed=(f"desired {sorted(set(valid['desired'].astype(int)))}, peak ready "
                      f"{int(frames.ready['ready'].max()) if not frames.ready.empty else 0}, "
                      f"load needed up to {peak_need}"),
            why="" if ok else (f"scaled although min == max: {len(evidence)} row(s) "
                                f"off {p.min_scale}"),
            numbers={"min": p.min_scale, "max": p.max_scale, "peak_need": peak_need},
            evidence=evidence,
        )
    first = int(valid["desired"].iloc[0])
    cap = p.max_scale or math.inf
    wanted = min(peak_need, cap)
    peak = int(valid["desired"].max())
    if wanted <= first:
        return skip(CHECK, claim, key,
                    f"the load never needed more than the {first} pod(s) already desired",
                    observed=f"peak need {peak_need}")
    ok = peak > first
    t_need = start + next(i for i, n in enumerate(need) if n > first)
    return Verdict(
        CHECK, claim, key, PASS if ok else FAIL,
        expected=f"desired rises above {first} (load needed {wanted})",
        observed=f"desired peaked at {peak}",
        why="" if ok else f"load needed {wanted} pods from t={t_need - start:.0f} s, "
        f"desired stayed {first}",
        numbers={"initial_desired": first, "peak_desired": peak, "peak_need": peak_need},
        evidence=valid.head(50),
    )
