"""Two runs' trajectories side by side: the emulator against real Knative/KServe.

A run bundle (``reports/<run-id>/``, :mod:`harness.report.bundle`) keeps each case's
frames as CSV. :func:`load_case` reads one case back; :func:`per_second` samples its
desired pods, ready pods and panic state once a second from the case's origin (its
first request); :func:`summarize` reduces it to the numbers that tell two clusters apart
(first scale-up, peaks, panic periods, first step down, time to zero, the cold start's
phases); :func:`compare` lays two runs' cases out side by side as text. Times are seconds
after the case's first request.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import UserError
from harness.observe.frames import (
    PANIC_COLUMNS,
    POD_COLUMNS,
    READY_COLUMNS,
    SCALE_COLUMNS,
    SCHEDULING_COLUMNS,
    Frames,
    empty,
)
from harness.observe.series import desired_steps, one_pa, periods, step_value
from harness.report.bundle import read_summary

CSVS = {"pods": POD_COLUMNS, "ready": READY_COLUMNS, "scale": SCALE_COLUMNS,
        "panic": PANIC_COLUMNS, "scheduling": SCHEDULING_COLUMNS}


@dataclass(frozen=True)
class Track:
    """One case of one run: its frames, request records and origin (first request)."""

    run: str
    case: str
    frames: Frames
    records: pd.DataFrame
    origin: float


def _csv(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    if not path.is_file():
        return empty(columns)
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return empty(columns)


def cases(run_dir: str | Path) -> list[str]:
    """The cases of a run bundle that have a timeline (a ``cases/<case>/`` folder)."""
    root = Path(run_dir)
    read_summary(root)
    base = root / "cases"
    return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def load_case(run_dir: str | Path, case: str) -> Track:
    """A case's frames and records back from a run bundle."""
    root = Path(run_dir)
    summary = read_summary(root)
    cdir = root / "cases" / case
    if not cdir.is_dir():
        raise UserError(f"run has no case {case!r}", where=str(root))
    f = {k: _csv(cdir / f"{k}.csv", cols) for k, cols in CSVS.items()}
    if not f["panic"].empty:
        f["panic"]["panic"] = f["panic"]["panic"].astype(str).str.lower() == "true"
    records = _csv(cdir / "records.csv", ("start", "latency_s", "status"))
    info = (summary.get("cases") or {}).get(case) or {}
    start = float(info.get("start") or math.nan)
    end = float(info.get("end") or math.nan)
    frames = Frames(pods=f["pods"], ready=f["ready"], scale=f["scale"], panic=f["panic"],
                    scheduling=f["scheduling"], start=start, end=end)
    origin = float(records["start"].min()) if not records.empty else start
    return Track(str(summary.get("run_id") or root.name), case, frames, records, origin)


def _panic_at(frames: Frames, t: float) -> bool:
    end = frames.end if not math.isnan(frames.end) else t
    return any(a <= t < b for a, b in periods(frames.panic, end))


def per_second(track: Track, t_from: float, t_to: float) -> pd.DataFrame:
    """``t`` (whole seconds after the origin), ``desired``, ``ready``, ``panic`` (0/1)."""
    scale = one_pa(track.frames.scale)
    rows = []
    for t in range(math.floor(t_from), math.ceil(t_to) + 1):
        at = track.origin + t
        d = float(step_value(scale, at, "desired", math.nan)) if not scale.empty else math.nan
        r = float(step_value(track.frames.ready, at, "ready", math.nan))
        rows.append({"t": t, "desired": d, "ready": r,
                     "panic": int(_panic_at(track.frames, at))})
    return pd.DataFrame(rows)


def _rel(track: Track, t: float) -> float:
    return t - track.origin if not math.isnan(t) else math.nan


def summarize(track: Track) -> dict[str, Any]:
    """The numbers that tell two runs of one case apart (seconds after the origin)."""
    from harness.checks.cold_start import cold_request, phase_rows, scale_up_seen, serving_pod

    f, o = track.frames, track.origin
    scale = one_pa(f.scale)
    steps = desired_steps(scale) if not scale.empty else pd.DataFrame(
        columns=["time", "before", "after"])
    after = steps[steps["time"] >= o]
    up = after[after["after"] > after["before"]]
    down = after[after["after"] < after["before"]]
    ready = f.ready[f.ready["time"] >= o] if not f.ready.empty else f.ready
    r0 = float(step_value(f.ready, o, "ready", 0)) if not f.ready.empty else 0.0
    rising = ready[ready["ready"] > r0] if not ready.empty else ready
    # every pod gone (or terminating), after there were pods at or after the origin
    had = ready[ready["pods"] > 0] if not ready.empty else ready
    since = o if float(step_value(f.ready, o, "pods", 0) or 0) > 0 else (
        float(had["time"].iloc[0]) if not had.empty else math.inf)
    zero = ready[(ready["pods"] == 0) & (ready["time"] > since)] if not ready.empty else ready
    end = f.end if not math.isnan(f.end) else o
    out: dict[str, Any] = {
        "first desired up": _rel(track, float(up["time"].iloc[0])) if not up.empty
        else math.nan,
        "first ready up": _rel(track, float(rising["time"].iloc[0])) if not rising.empty
        else math.nan,
        "peak desired": float(max([float(step_value(scale, o, "desired", math.nan)),
                                   *scale["desired"][scale["time"] >= o]]))
        if not scale.empty else math.nan,
        "peak ready": float(max([r0, *ready["ready"]])) if not ready.empty else r0,
        "first desired down": _rel(track, float(down["time"].iloc[0])) if not down.empty
        else math.nan,
        "desired steps": len(after),
        "time to zero": _rel(track, float(zero["time"].iloc[0])) if not zero.empty
        else math.nan,
        "panic": [(round(a - o, 1), round(b - o, 1)) for a, b in periods(f.panic, end)
                  if b >= o],
    }
    if not track.records.empty and {"start", "latency_s", "status"} <= set(track.records):
        req = cold_request(f, track.records)
        if req is not None:
            t_req = float(req["start"])
            stamps = {"request": t_req, "response": t_req + float(req["latency_s"]),
                      "desired": scale_up_seen(f, t_req)}
            pod = serving_pod(f, req)
            if pod is not None:
                stamps.update({c: float(pod[c]) for c in
                               ("created", "scheduled", "initialized", "started", "ready")})
            for r in phase_rows(stamps):
                out[f"cold: {r['phase']}"] = r["seconds"]
            out["cold: total"] = float(req["latency_s"])
    return out


def _fmt(x: Any) -> str:
    if isinstance(x, list):
        return " ".join(f"{a:g}..{b:g}" for a, b in x) or "none"
    if isinstance(x, float):
        return "-" if math.isnan(x) else f"{x:.2f}".rstrip("0").rstrip(".")
    return str(x)


def _diff(a: Any, b: Any) -> str:
    if isinstance(a, float | int) and isinstance(b, float | int):
        if math.isnan(a) or math.isnan(b):
            return ""
        return f"{b - a:+.2f}"
    return "" if a == b else "differs"


def compare(a_dir: str | Path, b_dir: str | Path, *, only: Sequence[str] = (),
            labels: tuple[str, str] = ("A", "B"), before_s: float = 3.0,
            after_s: float = 5.0) -> str:
    """Every case both runs have (or those named in ``only``, by substring): per-second
    desired/ready/panic side by side, then the summary numbers with B - A."""
    a_cases, b_cases = cases(a_dir), cases(b_dir)
    common = [c for c in a_cases if c in b_cases and (not only or any(o in c for o in only))]
    if not common:
        raise UserError(f"the runs share no case{' matching ' + ', '.join(only) if only else ''}"
                        f" ({labels[0]}: {len(a_cases)} cases, {labels[1]}: {len(b_cases)})")
    la, lb = labels
    out: list[str] = []
    for case in common:
        ta, tb = load_case(a_dir, case), load_case(b_dir, case)
        if ta.records.empty and tb.records.empty:
            continue
        span = max(_last(ta), _last(tb)) + after_s
        pa, pb = per_second(ta, -before_s, span), per_second(tb, -before_s, span)
        out.append(f"== {case}  (t: seconds after the first request; "
                   f"{la}={ta.run}, {lb}={tb.run})")
        out.append(f"{'t':>5} | {la + ' desired':>10} {'ready':>5} {'panic':>5} | "
                   f"{lb + ' desired':>10} {'ready':>5} {'panic':>5}")
        for (_, ra), (_, rb) in zip(pa.iterrows(), pb.iterrows(), strict=True):
            out.append(f"{int(ra['t']):>5} | {_fmt(ra['desired']):>10} {_fmt(ra['ready']):>5} "
                       f"{'P' if ra['panic'] else '':>5} | {_fmt(rb['desired']):>10} "
                       f"{_fmt(rb['ready']):>5} {'P' if rb['panic'] else '':>5}")
        sa, sb = summarize(ta), summarize(tb)
        out.append(f"{'':>2}{'summary':<36} {la:>12} {lb:>12} {lb + ' - ' + la:>10}")
        for key in [*sa, *[k for k in sb if k not in sa]]:
            a, b = sa.get(key, math.nan), sb.get(key, math.nan)
            out.append(f"{'':>2}{key:<36} {_fmt(a):>12} {_fmt(b):>12} {_diff(a, b):>10}")
        out.append("")
    return "\n".join(out)


def _last(track: Track) -> float:
    """The last moment of the case's timeline, seconds after its origin."""
    ends = [track.frames.end] if not math.isnan(track.frames.end) else []
    for df in (track.frames.ready, track.frames.scale):
        if not df.empty:
            ends.append(float(df["time"].max()))
    return (max(ends) - track.origin) if ends else 0.0
