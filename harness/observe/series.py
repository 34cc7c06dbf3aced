"""Step-function lookups on time-indexed frames (``time`` column, ascending).

A frame like ``ready`` or ``scale`` holds a value from its row's ``time`` until the next
row; these helpers read it at an instant or over an interval.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def step_value(df: pd.DataFrame, t: float, col: str, default: Any = math.nan) -> Any:
    """The value of ``col`` in force at ``t`` (last row with ``time <= t``), else default."""
    if df.empty:
        return default
    times = df["time"].to_numpy(dtype=float)
    i = int(np.searchsorted(times, t, side="right")) - 1
    if i < 0:
        return default
    return df[col].iloc[i]


def window_values(df: pd.DataFrame, t0: float, t1: float, col: str) -> list[Any]:
    """Every value of ``col`` in force at some instant of ``[t0, t1]``."""
    if df.empty:
        return []
    out = []
    before = step_value(df, t0, col, None)
    if before is not None:
        out.append(before)
    mask = (df["time"] > t0) & (df["time"] <= t1)
    out.extend(df.loc[mask, col].tolist())
    return out


def one_pa(scale: pd.DataFrame, pa: str | None = None) -> pd.DataFrame:
    """The rows of one PodAutoscaler: ``pa``, or the one with the most rows."""
    if scale.empty:
        return scale
    if pa is None:
        pa = str(scale["pa"].value_counts().idxmax())
    return scale[scale["pa"] == pa].reset_index(drop=True)


def desired_steps(scale: pd.DataFrame) -> pd.DataFrame:
    """Changes of the desired scale: ``time``, ``before``, ``after`` (unknown values skipped)."""
    rows = []
    prev: float | None = None
    for t, d in zip(scale["time"], scale["desired"], strict=True):
        if d != d or d < 0:
            continue
        if prev is not None and d != prev:
            rows.append((float(t), prev, float(d)))
        prev = float(d)
    return pd.DataFrame(rows, columns=["time", "before", "after"])


def periods(panic: pd.DataFrame, end: float) -> list[tuple[float, float]]:
    """``(start, stop)`` intervals where ``panic`` is True (open ones end at ``end``)."""
    out = []
    start: float | None = None
    for t, p in zip(panic["time"], panic["panic"], strict=True):
        if bool(p) and start is None:
            start = float(t)
        elif not bool(p) and start is not None:
            out.append((start, float(t)))
            start = None
    if start is not None:
        out.append((start, max(end, start)))
    return out
