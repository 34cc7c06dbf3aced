"""What the reference model predicts for a profile's documented scenarios.

Three scenarios that every profile's promises are about, each run through
:func:`harness.kpa.simulate` with the profile's effective knobs and pods that start
instantly (so the numbers are the autoscaler's own part; cold start comes on top):

* **burst**: one ready pod at its target load, then the load jumps to twice the panic
  threshold's worth: when does panic start, and when is the new scale reached?
* **scale-down**: ``N`` pods (10, or max-scale if smaller) at their target load, then no
  traffic: when does each pod go, and when does the decider first say 0?
* **scale to zero**: one pod, no traffic from t = 0: when do replicas reach 0?

Each prediction is a plain record, so the CLI, the conformance job and the report can
print or store it as they like.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from harness.kpa import simulate
from harness.params import KPAParams


@dataclass(frozen=True, slots=True)
class Prediction:
    """One predicted timing: ``value`` seconds after the scenario's load change."""

    scenario: str
    measure: str
    value: float | None
    """Seconds, or None when it did not happen within the simulated span."""
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _first(frame: pd.DataFrame, mask: pd.Series) -> float | None:
    hits = frame.loc[mask, "t"]
    return None if hits.empty else float(hits.iloc[0])


def _at_target(p: KPAParams, pods: int) -> float:
    """Revision-wide load that exactly meets ``pods`` pods' target."""
    return pods * p.target_per_pod


def burst(p: KPAParams) -> list[Prediction]:
    """One pod at target load, then a step to 2 x threshold x its capacity."""
    base = _at_target(p, 1)
    peak = 2 * p.panic_threshold * base
    want = math.ceil(round(peak / p.target_per_pod, 6))
    if p.max_scale:
        want = min(want, p.max_scale)
    span = int(max(4 * p.stable_window, 60))
    frame = simulate(p, [peak] * span, initial_ready=1, history=base)
    panic_at = _first(frame, frame["panic_mode"])
    reached = _first(frame, frame["ready"] >= want)
    return [
        Prediction("burst", "panic starts", panic_at, f"load {base:g} -> {peak:g} from 1 pod"),
        Prediction(
            "burst", f"{want} pods ready", reached, f"ceil({peak:g} / {p.target_per_pod:g})"
        ),
    ]


def scale_down(p: KPAParams) -> list[Prediction]:
    """``N`` pods at target load, then no traffic."""
    start = 10 if not p.max_scale else min(10, p.max_scale)
    span = int(p.stable_window + p.scale_down_delay * (start + 2) + 4 * p.stable_window + 60)
    frame = simulate(p, [0.0] * span, initial_ready=start, history=_at_target(p, start))
    steps = frame["replicas"].diff().fillna(0)
    biggest = int(-steps.min()) if len(steps) else 0
    first_down = _first(frame, frame["replicas"] < start)
    decider_zero = _first(frame, frame["decider"] == 0)
    return [
        Prediction("scale-down", f"first pod of {start} removed", first_down),
        Prediction("scale-down", "largest step down (pods)", float(biggest), "per 2 s tick"),
        Prediction("scale-down", "decider says 0", decider_zero),
    ]


def scale_to_zero(p: KPAParams) -> list[Prediction]:
    """One pod, no traffic from t = 0."""
    span = int(
        2 * p.stable_window
        + p.scale_down_delay
        + max(p.scale_to_zero_grace_period, p.scale_to_zero_pod_retention_period)
        + 120
    )
    frame = simulate(p, [0.0] * span, initial_ready=1, history=_at_target(p, 1))
    zero = _first(frame, frame["replicas"] == 0)
    detail = "" if p.enable_scale_to_zero and p.min_scale == 0 else "scale to zero is off"
    return [Prediction("scale-to-zero", "replicas reach 0 (from 1 pod)", zero, detail)]


def predict(p: KPAParams) -> list[Prediction]:
    """All scenarios for one set of effective knobs."""
    return [*burst(p), *scale_down(p), *scale_to_zero(p)]
