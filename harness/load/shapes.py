"""Shape math: the level of a profile as a pure function of elapsed time.

``level(segment, t)`` is the concurrency (users) or rate (arrivals/s) ``t`` seconds into a
segment; ``cumulative(segment, t)`` is its integral (arrivals so far, for rate segments).
At the profile level, :func:`target_at` gives the mode and level, :func:`users_at` what the
Locust shape asks for, :func:`arrivals_before` the open-loop arrivals scheduled before
``t``, and :func:`arrival_times` the schedule itself. Nothing here sleeps or reads a clock,
so shapes are tested by calling them at chosen times.

Open-loop schedule: arrival ``k`` (0, 1, 2, ...) is due when the cumulative rate ``N(t)``
reaches ``k + 0.5``; so the arrivals before ``t`` number about ``round(N(t))`` and their timing
follows the shape exactly. ``N`` is sampled on a 50 ms grid and interpolated linearly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from harness.load.profile import LoadProfile, LoadSegment

GRID = 0.05  # seconds between samples of N(t) for the arrival schedule


def level(seg: LoadSegment, t: float) -> float:
    """Level of ``seg`` at ``t`` seconds after its start (clamped into the segment)."""
    p = seg.params
    d = seg.duration
    t = min(max(t, 0.0), d)
    match seg.shape:
        case "idle":
            return 0.0
        case "constant":
            return p["value"]
        case "ramp":
            return p["from"] + (p["to"] - p["from"]) * (t / d)
        case "step":
            levels = p["levels"]
            return levels[min(int(t / (d / len(levels))), len(levels) - 1)]
        case "spike":
            return p["peak"] if p["at"] <= t < p["at"] + p["width"] else p["base"]
        case "burst":
            return p["capacity"] * p["multiple"] if t >= p["at"] else p["baseline"]
        case "sine":
            w = 2 * math.pi / p["period"]
            return max(0.0, p["mean"] + p["amplitude"] * math.sin(w * t + math.radians(p["phase"])))
        case "trace":
            values = p["values"]
            return values[min(int(t), len(values) - 1)]
    raise ValueError(f"unknown shape {seg.shape!r}")


def cumulative(seg: LoadSegment, t: float) -> float:
    """Integral of :func:`level` from the segment's start to ``t`` (clamped)."""
    p = seg.params
    d = seg.duration
    t = min(max(t, 0.0), d)
    match seg.shape:
        case "idle":
            return 0.0
        case "constant":
            return p["value"] * t
        case "ramp":
            return p["from"] * t + (p["to"] - p["from"]) * t * t / (2 * d)
        case "step":
            levels = p["levels"]
            hold = d / len(levels)
            full = min(int(t / hold), len(levels))
            done = sum(levels[:full]) * hold
            return done + (levels[full] * (t - full * hold) if full < len(levels) else 0.0)
        case "spike":
            return p["base"] * t + (p["peak"] - p["base"]) * min(max(t - p["at"], 0.0), p["width"])
        case "burst":
            high = p["capacity"] * p["multiple"]
            return p["baseline"] * min(t, p["at"]) + high * max(t - p["at"], 0.0)
        case "sine":
            w = 2 * math.pi / p["period"]
            ph = math.radians(p["phase"])
            return p["mean"] * t + p["amplitude"] / w * (math.cos(ph) - math.cos(w * t + ph))
        case "trace":
            values = p["values"]
            full = min(int(t), len(values))
            part = values[full] * (t - full) if full < len(values) else 0.0
            return sum(values[:full]) + part
    raise ValueError(f"unknown shape {seg.shape!r}")


def segment_at(profile: LoadProfile, t: float) -> tuple[int, float] | None:
    """Index of the segment playing at ``t`` and the time into it; None after the end."""
    if t < 0:
        return None
    start = 0.0
    for i, seg in enumerate(profile.segments):
        if t < start + seg.duration:
            return i, t - start
        start += seg.duration
    return None


def target_at(profile: LoadProfile, t: float) -> tuple[str, float] | None:
    """(mode, level) at ``t``; None once the profile is over."""
    found = segment_at(profile, t)
    if found is None:
        return None
    i, local = found
    seg = profile.segments[i]
    return seg.mode, level(seg, local)


def users_at(profile: LoadProfile, t: float) -> int | None:
    """Closed-loop users wanted at ``t`` (0 in rate and idle segments); None after the end."""
    found = target_at(profile, t)
    if found is None:
        return None
    mode, value = found
    return int(math.floor(value + 0.5)) if mode == "concurrency" else 0


def arrivals_integral(profile: LoadProfile, t: float) -> float:
    """N(t): open-loop arrivals the profile asks for from its start up to ``t``."""
    total, start = 0.0, 0.0
    for seg in profile.segments:
        if t <= start:
            break
        if seg.mode == "rate":
            total += cumulative(seg, t - start)
        start += seg.duration
    return total


def arrivals_before(profile: LoadProfile, t: float) -> int:
    """Arrivals due in ``[0, t)``: those ``k`` with ``k + 0.5 < N(t)`` (an arrival due exactly
    at ``t`` belongs to what follows)."""
    return max(0, math.ceil(arrivals_integral(profile, t) - 0.5 - 1e-9))


def arrival_times(profile: LoadProfile, index: int = 0, stride: int = 1) -> Iterator[float]:
    """Due times (seconds from the start) of arrivals ``index``, ``index + stride``, ...

    With ``stride`` load processes each taking its own ``index``, together they send every
    arrival once. Finite: it ends with the profile.
    """
    total = profile.total
    steps = max(1, int(math.ceil(total / GRID)))
    grid = [min(i * GRID, total) for i in range(steps + 1)]
    values = [arrivals_integral(profile, g) for g in grid]
    j = 0
    k = index
    while True:
        target = k + 0.5
        while j < steps and values[j + 1] < target:
            j += 1
        if j >= steps or values[-1] < target:
            return
        lo, hi = values[j], values[j + 1]
        frac = 0.0 if hi <= lo else (target - lo) / (hi - lo)
        yield grid[j] + frac * (grid[j + 1] - grid[j])
        k += stride


def offered_per_second(profile: LoadProfile) -> list[tuple[int, str, float]]:
    """For each whole second: (second, mode, offered), where offered is the users asked for
    (concurrency), the arrivals scheduled in it (rate), or 0 (idle)."""
    out: list[tuple[int, str, float]] = []
    for s in range(int(math.ceil(profile.total - 1e-9))):
        mode, _ = target_at(profile, float(s)) or ("idle", 0.0)
        if mode == "rate":
            end = min(s + 1.0, profile.total)
            offered = float(arrivals_before(profile, end) - arrivals_before(profile, float(s)))
        elif mode == "concurrency":
            offered = float(users_at(profile, float(s)) or 0)
        else:
            offered = 0.0
        out.append((s, mode, offered))
    return out
