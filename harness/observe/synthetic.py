"""Synthetic timelines: frames and load records built from series, for tests and demos.

:func:`frames_from_series` turns step series of desired and ready pods into
:class:`~harness.observe.frames.Frames` (pods get a lifecycle that matches the ready
series); :func:`frames_from_simulation` does the same from a reference-model run, so a
timeline that honours every claim is one call away; :func:`records_from_load` makes
load-runner records whose per-second concurrency is the given load.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from harness.observe.frames import (
    PANIC_COLUMNS,
    POD_COLUMNS,
    READY_COLUMNS,
    SCALE_COLUMNS,
    SCHEDULING_COLUMNS,
    Frames,
    empty,
)

PA_NAME = "model-predictor-00001"


def records_from_load(
    load: Sequence[float], start: float, *, status: int = 200, pod: str = ""
) -> pd.DataFrame:
    """Records whose in-flight concurrency in second ``k`` is ``load[k]``."""
    rows = []
    for k, c in enumerate(load):
        n = int(math.ceil(c - 1e-9))
        for _ in range(n):
            rows.append({"start": start + k, "latency_s": c / n, "status": status, "bytes": 10,
                         "pod": pod, "error": "", "scheduled": math.nan, "loop": "closed",
                         "worker": 0})
    cols = ["start", "latency_s", "status", "bytes", "pod", "error", "scheduled", "loop", "worker"]
    return pd.DataFrame(rows, columns=cols)


def pods_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """A pods frame from partial rows (missing times NaN, texts empty, gpu 0)."""
    out = []
    for r in rows:
        row: dict[str, Any] = {c: math.nan for c in POD_COLUMNS}
        row.update(revision="", node="", phase="", affinity="", node_selector="",
                   pending_reason="", gpu=0.0)
        row.update(r)
        out.append(row)
    return pd.DataFrame(out, columns=list(POD_COLUMNS)) if out else empty(POD_COLUMNS)


def frames_from_series(
    start: float,
    desired: Sequence[tuple[float, float]],
    ready: Sequence[tuple[float, int]],
    *,
    pod_startup: float = 1.0,
    end: float | None = None,
    panic: Sequence[tuple[float, bool]] | None = None,
    pa: str = PA_NAME,
    gpu: float = 0.0,
    node: str = "node-1",
) -> Frames:
    """Frames from ``(t, value)`` steps (t in seconds after ``start``)."""
    ready_rows: list[tuple[float, int, int]] = []
    pods: list[dict[str, Any]] = []
    alive: list[dict[str, Any]] = []
    serial = 0
    for t, r in ready:
        at = start + t
        while len(alive) < r:
            serial += 1
            c = at - pod_startup
            pod = {"pod": f"{pa}-deployment-{serial:04d}", "revision": pa, "node": node,
                   "phase": "Running", "created": c, "scheduled": c + 0.1 * pod_startup,
                   "initialized": c + 0.4 * pod_startup, "started": c + 0.6 * pod_startup,
                   "ready": at, "gpu": gpu}
            alive.append(pod)
            pods.append(pod)
        while len(alive) > r:
            pod = alive.pop()
            pod.update(terminating=at, deleted=at + 1.0, phase="Deleted")
        if not ready_rows or ready_rows[-1][1] != r:
            ready_rows.append((at, int(r), int(r)))
    scale_rows = []
    ready_df = pd.DataFrame(ready_rows, columns=list(READY_COLUMNS))
    from harness.observe.series import step_value

    for t, d in desired:
        at = start + t
        act = step_value(ready_df, at, "ready", 0)
        if scale_rows and scale_rows[-1][2] == d:
            continue
        active = "True" if d > 0 else "False"
        scale_rows.append((at, pa, float(d), float(act), active, "" if d > 0 else "NoTraffic"))
    times = [start + t for t, _ in desired] + [start + t for t, _ in ready]
    last = max(times) if times else start
    panic_df = (
        pd.DataFrame([(start + t, bool(p), False, "metrics") for t, p in panic],
                     columns=list(PANIC_COLUMNS))
        if panic is not None else empty(PANIC_COLUMNS)
    )
    return Frames(
        pods=pods_frame(pods),
        ready=ready_df,
        scale=pd.DataFrame(scale_rows, columns=list(SCALE_COLUMNS)),
        panic=panic_df,
        scheduling=empty(SCHEDULING_COLUMNS),
        start=start,
        end=start + end if end is not None else last,
    )


def frames_from_simulation(
    sim: pd.DataFrame, start: float, *, pod_startup: float = 1.0, **kw: Any
) -> Frames:
    """Frames of a run that behaved exactly like the reference model's ``sim``."""
    desired = list(zip(sim["t"].astype(float), sim["desired"].astype(float), strict=True))
    ready = list(zip(sim["t"].astype(float), sim["ready"].astype(int), strict=True))
    if desired and desired[0][0] > 0:  # the state before the first tick
        desired.insert(0, (0.0, float(sim["ready"].iloc[0])))
        ready.insert(0, (0.0, int(sim["ready"].iloc[0])))
    kw.setdefault("end", float(sim["t"].iloc[-1]))
    return frames_from_series(start, desired, ready, pod_startup=pod_startup, **kw)
