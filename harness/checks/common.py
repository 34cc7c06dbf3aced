"""Shared inputs of the checks: effective parameters, measured start-up, offered load.

Checks accept the effective parameters either as a bare :class:`~harness.params.KPAParams`
or as a :class:`~harness.resolve.Resolved` (then claim keys name where each value came
from). Load records follow ``harness.load.records`` (``start``, ``latency_s``,
``status``, ``bytes``, ``pod``, ``error``, ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from harness.observe.frames import Frames
from harness.observe.load import offered_load
from harness.params import KPAParams
from harness.resolve import Resolved

ParamsInput = KPAParams | Resolved


@dataclass(frozen=True)
class Effective:
    """Effective knobs plus a way to name each knob's source key."""

    params: KPAParams
    keys: dict[str, str]

    def key(self, field_name: str) -> str:
        """The key that set a field (``config-autoscaler: stable-window``), or its name."""
        if field_name in self.keys:
            return self.keys[field_name]
        return "config-autoscaler." + field_name.replace("_", "-")


def effective(params: ParamsInput) -> Effective:
    if isinstance(params, Resolved):
        return Effective(params.params, dict(params.keys))
    return Effective(params, {})


def pod_startup(frames: Frames) -> float | None:
    """Median seconds from pod creation to Ready over the recorded pods, or None."""
    pods = frames.pods
    if pods.empty:
        return None
    d = (pods["ready"] - pods["created"]).dropna()
    return None if d.empty else float(d.median())


def pod_startup_range(frames: Frames) -> tuple[float, float] | None:
    pods = frames.pods
    if pods.empty:
        return None
    d = (pods["ready"] - pods["created"]).dropna()
    return None if d.empty else (float(d.min()), float(d.max()))


def timeline_start(frames: Frames, records: pd.DataFrame | None) -> float:
    """The earliest instant of the run: first event or first request, whole second."""
    cands = [frames.start] if not math.isnan(frames.start) else []
    if records is not None and not records.empty:
        cands.append(float(records["start"].min()))
    return float(math.floor(min(cands))) if cands else 0.0


def timeline_end(frames: Frames, records: pd.DataFrame | None) -> float:
    cands = [frames.end] if not math.isnan(frames.end) else []
    if records is not None and not records.empty:
        done = records["start"] + records["latency_s"].fillna(0.0)
        cands.append(float(done.max()))
    return max(cands) if cands else 0.0


def load_series(
    frames: Frames, records: pd.DataFrame | None, params: KPAParams
) -> tuple[float, list[float]]:
    """(start epoch, per-second load in the autoscaler's metric) over the whole run."""
    start = timeline_start(frames, records)
    end = timeline_end(frames, records)
    if records is None or records.empty:
        return start, [0.0] * max(1, int(math.ceil(end - start)))
    df = offered_load(records, start, max(end, start + 1))
    col = "rps" if params.metric == "rps" else "concurrency"
    return start, [float(x) for x in df[col]]
