"""Check 9, no request lost: every request sent got a response, and none was a 5xx.

Each record is tagged with the phase it fell in: ``scale-from-zero`` (sent while no
pod was ready), ``scale-down`` (in flight while a pod was terminating) or ``steady``.
Open-loop arrivals the load generator itself dropped (``not sent: ...``) are counted
apart: they never reached the service. The claim is about scale-from-zero and
scale-down: when either phase got no request, the check has no evidence for that part
and says ``inconclusive`` (a failing status), never ``pass``; a lost request in any
phase is a ``fail``.
"""

from __future__ import annotations

import math

import pandas as pd

from harness.checks.common import ParamsInput
from harness.checks.verdict import FAIL, INCONCLUSIVE, PASS, Verdict, skip
from harness.observe.frames import Frames
from harness.observe.load import NOT_SENT
from harness.observe.series import step_value

CHECK = "no-request-lost"
CLAIM = ("requests are buffered, never dropped: during scale-from-zero and scale-down every "
         "request gets a response, and none is a 5xx")
PHASES = ("scale-from-zero", "scale-down", "steady")
CLAIMED = ("scale-from-zero", "scale-down")
"""The phases the claim is about: each needs requests for a verdict."""
TERMINATION_TAIL = 30.0
"""Seconds a terminating pod counts as draining when its deletion was not recorded."""


def phase_of(frames: Frames, start: float, end: float) -> str:
    if frames.ready.empty or int(step_value(frames.ready, start, "ready", 0)) == 0:
        return "scale-from-zero"
    pods = frames.pods
    if not pods.empty:
        term = pods["terminating"].to_numpy(float)
        gone = pods["deleted"].fillna(pods["terminating"] + TERMINATION_TAIL).to_numpy(float)
        for a, b in zip(term, gone, strict=True):
            if not math.isnan(a) and start <= b and end >= a:
                return "scale-down"
    return "steady"


def check_no_request_lost(
    frames: Frames, params: ParamsInput | None, records: pd.DataFrame | None,
    *, require: tuple[str, ...] = CLAIMED,
) -> Verdict:
    """``require``: the claimed phases this recording must have requests in (a scenario
    that covers only one part of the claim names that part)."""
    key = "knative activator buffering (knative-kpa.md §7, §9)"
    if records is None or records.empty:
        return skip(CHECK, CLAIM, key, "no request records")
    if "error" in records:
        err = records["error"].astype(object).fillna("").astype(str)
    else:
        err = pd.Series([""] * len(records), index=records.index)
    not_sent = err.str.startswith(NOT_SENT)
    recs = records[~not_sent].copy()
    lat = recs["latency_s"].fillna(0.0)
    recs["phase"] = [phase_of(frames, float(s), float(s + x))
                     for s, x in zip(recs["start"], lat, strict=True)]
    status = recs["status"].astype(int)
    lost = status == 0
    five = status >= 500
    recs["problem"] = ""
    recs.loc[five, "problem"] = "5xx"
    recs.loc[lost, "problem"] = "no response"
    bad = recs[lost | five]
    counts = recs.groupby("phase").size().to_dict()
    bad_counts = bad.groupby("phase").size().to_dict()
    observed = ", ".join(f"{ph}: {counts.get(ph, 0)} sent, {bad_counts.get(ph, 0)} failed"
                         for ph in PHASES)
    observed += f"; {int(not_sent.sum())} not sent by the generator"
    why = ""
    if not bad.empty:
        b = bad.iloc[0]
        why = (f"{len(bad)} of {len(recs)} requests failed; first: {b['problem']} "
               f"(status {int(b['status'])}) during {b['phase']} at t="
               f"{float(b['start']) - frames.start:.1f} s"
               + (f": {str(b['error'])[:80]}" if str(b.get('error') or '') else ""))
    empty = [ph for ph in require if not counts.get(ph, 0)]
    status = FAIL if not bad.empty else INCONCLUSIVE if empty else PASS
    if status == INCONCLUSIVE:
        why = ("no evidence: " + ", ".join(f"{ph}: 0 sent" for ph in empty)
               + " (no request fell in that phase, so the claim is untested there)")
    cols = [c for c in ("start", "latency_s", "status", "pod", "error", "phase", "problem")
            if c in recs]
    return Verdict(
        CHECK, CLAIM, key, status,
        expected="0 requests without a response, 0 responses >= 500",
        observed=observed, why=why,
        numbers={"sent": float(len(recs)), "failed": float(len(bad)),
                 "no_response": float(lost.sum()), "status_5xx": float(five.sum()),
                 "not_sent": float(not_sent.sum()),
                 **{f"sent_{ph.replace('-', '_')}": float(counts.get(ph, 0)) for ph in PHASES}},
        evidence=bad[cols].head(100) if not bad.empty else recs[cols].head(20),
    )
