"""Measurement accuracy: what the harness measures vs the emulator's own ground truth.

Runs the mutation matrix's scenarios (:mod:`harness.matrix`) once on a healthy
emulated cluster. The harness side is what a conformance run sees from outside: the
recorder's watch events turned into frames (ready-count changes, desired-scale
changes) and the load generator's request records (the cold start's total). The truth
side is the cluster's in-process log (:mod:`harness.emulator.truth`): the instant the
kubelet wrote a pod's Ready condition, the Deployment controller deleted a pod, the KPA
wrote a new desiredScale, and the ingress received and answered each request.

Prints the error (measured - true) of each kind with max, p50 and p95, and the verdict
against the targets: scale event times within 0.5 s, cold-start total within 0.25 s.
Exits 1 when a target is missed.

    .venv/bin/python benchmarks/measurement_accuracy.py [--scenarios panic,scale-rate,cold]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

from harness.matrix import scenarios

SCALE_TARGET_S = 0.5
COLD_TARGET_S = 0.25
_MATCH_WINDOW_S = 5.0


def truth_ready_changes(truth: list[dict[str, Any]], ns: str, rev: str) -> list[tuple[float, int]]:
    """(time, ready count) after each true change of a revision's ready, not-terminating pods."""
    state: dict[str, tuple[bool, bool]] = {}  # pod -> (ready, terminating)
    out: list[tuple[float, int]] = []
    count = 0
    for e in sorted(truth, key=lambda e: e["time"]):
        if e["namespace"] != ns or e.get("revision") != rev:
            continue
        ready, term = state.get(e["name"], (False, False))
        if e["kind"] == "pod-ready":
            ready = True
        elif e["kind"] == "pod-unready":
            ready = False
        elif e["kind"] == "pod-terminating":
            term = True
        else:
            continue
        state[e["name"]] = (ready, term)
        new = sum(1 for r, t in state.values() if r and not t)
        if new != count:
            out.append((float(e["time"]), new))
            count = new
    return out


def truth_desired_changes(truth: list[dict[str, Any]], ns: str, rev: str
                          ) -> list[tuple[float, int]]:
    return [(float(e["time"]), int(e["desired"])) for e in sorted(truth, key=lambda e: e["time"])
            if e["kind"] == "desired-scale" and e["namespace"] == ns and e["name"] == rev]


def measured_changes(df: pd.DataFrame, col: str) -> list[tuple[float, int]]:
    """(time, value) of each change of ``col`` after the frame's first row."""
    out = []
    prev: float | None = None
    for t, v in zip(df["time"], df[col], strict=True):
        if v != v:  # NaN
            continue
        if prev is not None and v != prev:
            out.append((float(t), int(v)))
        prev = float(v)
    return out


def match(measured: list[tuple[float, int]], truth: list[tuple[float, int]],
          since: float) -> tuple[list[float], int]:
    """Errors (measured - true) of each measured change paired with the latest true change
    to the same value at most :data:`_MATCH_WINDOW_S` before it (or just after it); and
    how many measured changes found no partner."""
    errors: list[float] = []
    unmatched = 0
    used: set[int] = set()
    cands = [(i, t, v) for i, (t, v) in enumerate(truth) if t >= since - 1.0]
    for tm, vm in measured:
        best: tuple[float, int] | None = None
        for i, tt, vt in cands:
            if i in used or vt != vm or abs(tm - tt) > _MATCH_WINDOW_S:
                continue
            if best is None or abs(tm - tt) < abs(best[0]):
                best = (tm - tt, i)
        if best is None:
            unmatched += 1
            continue
        used.add(best[1])
        errors.append(best[0])
    return errors, unmatched


def stats(errors: list[float]) -> dict[str, float]:
    if not errors:
        return {"n": 0, "max": math.nan, "p50": math.nan, "p95": math.nan, "mean": math.nan}
    a = np.abs(np.asarray(errors, dtype=float))
    return {"n": len(a), "max": float(a.max()), "p50": float(np.percentile(a, 50)),
            "p95": float(np.percentile(a, 95)), "mean": float(np.mean(errors))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", default="panic,scale-rate,scale-delay,cold",
                    help="matrix scenarios to run (comma separated)")
    args = ap.parse_args(argv)
    wanted = [s for s in args.scenarios.split(",") if s]
    t0 = time.monotonic()
    run = scenarios.record((), scenarios=wanted, truth=True)
    wall = time.monotonic() - t0
    ready_err: list[float] = []
    desired_err: list[float] = []
    unmatched = {"ready": 0, "desired": 0}
    req_err: list[float] = []
    cold_err: list[float] = []
    for name, tl in run.timelines.items():
        f = tl.frames()
        ns, rev = tl.namespace, tl.revision
        e, u = match(measured_changes(f.ready, "ready"),
                     truth_ready_changes(run.truth, ns, rev), f.start)
        ready_err += e
        unmatched["ready"] += u
        e, u = match(measured_changes(f.scale, "desired"),
                     truth_desired_changes(run.truth, ns, rev), f.start)
        desired_err += e
        unmatched["desired"] += u
        reqs = sorted((t for t in run.truth if t["kind"] == "request" and t["namespace"] == ns),
                      key=lambda t: t["time"])
        recs = tl.records.sort_values("start")
        ok = recs[recs["status"] > 0]
        # each record pairs with the ingress request that arrived closest after it was sent
        arrivals = np.array([r["time"] for r in reqs]) if reqs else np.array([])
        for s, lat in zip(ok["start"], ok["latency_s"], strict=True):
            if not len(arrivals):
                break
            i = int(np.argmin(np.abs(arrivals - s)))
            req_err.append(float(lat) - (reqs[i]["done"] - reqs[i]["time"]))
        if name == "cold":
            from harness.checks.cold_start import cold_request

            cold = cold_request(f, tl.records)
            first = [r for r in reqs if r.get("first")]
            if cold is not None and first:
                cold_err.append(float(cold["latency_s"]) - (first[0]["done"] - first[0]["time"]))
    rows = [("scale events: ready-count changes", ready_err, SCALE_TARGET_S),
            ("scale events: desired-scale changes", desired_err, SCALE_TARGET_S),
            ("cold-start total", cold_err, COLD_TARGET_S),
            ("request latency (info)", req_err, None)]
    print(f"measurement accuracy vs the emulator's ground truth ({', '.join(wanted)}; "
          f"recorded in {wall:.0f} s)")
    print(f"{'measure':38s} {'n':>4s} {'max s':>7s} {'p50 s':>7s} {'p95 s':>7s} "
          f"{'mean s':>7s}  target")
    failed = False
    for label, errs, target in rows:
        st = stats(errs)
        verdict = "-"
        if target is not None:
            ok = st["n"] > 0 and st["max"] <= target
            failed |= not ok
            verdict = f"{'PASS' if ok else 'FAIL'} (max <= {target:g} s)"
        print(f"{label:38s} {st['n']:4d} {st['max']:7.3f} {st['p50']:7.3f} {st['p95']:7.3f} "
              f"{st['mean']:7.3f}  {verdict}")
    print(f"unpaired measured changes: ready {unmatched['ready']}, "
          f"desired {unmatched['desired']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
