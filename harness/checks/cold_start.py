"""Check 7, cold start: the first request to a zero-scaled service, split into phases.

Phases (they add up to the total): autoscaler reaction (request sent -> the new pod
created), scheduling (created -> scheduled), initialization (scheduled -> initialized:
init containers, model download), container start to ready (initialized -> Ready),
first response (Ready -> the response read). The total is compared with the profile's
claim for the model's size class (``claims.cold-start-<size>``, or any claim id given).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from harness.checks.common import ParamsInput
from harness.checks.verdict import FAIL, PASS, Verdict, Window, skip, timing_budget
from harness.durations import parse_duration
from harness.observe.frames import Frames
from harness.observe.load import sent
from harness.observe.series import step_value
from harness.profiles import Profile

CHECK = "cold-start"
PHASES: tuple[tuple[str, str, str], ...] = (
    ("autoscaler reaction", "request", "created"),
    ("scheduling", "created", "scheduled"),
    ("initialization", "scheduled", "initialized"),
    ("container start to ready", "initialized", "ready"),
    ("first response", "ready", "response"),
)


def cold_request(frames: Frames, records: pd.DataFrame) -> pd.Series | None:
    """The first request sent while no pod was ready."""
    recs = sent(records).sort_values("start")
    for _, r in recs.iterrows():
        if int(step_value(frames.ready, float(r["start"]), "ready", 0)) == 0:
            return r
    return None


def serving_pod(frames: Frames, req: pd.Series) -> pd.Series | None:
    pods = frames.pods
    if pods.empty:
        return None
    name = str(req.get("pod") or "")
    if name and (pods["pod"] == name).any():
        return pods[pods["pod"] == name].iloc[0]
    cand = pods[(pods["ready"].notna()) & (pods["ready"] >= float(req["start"]))]
    return None if cand.empty else cand.sort_values("ready").iloc[0]


def _claim(claims: Mapping[str, Mapping[str, Any]], cid: str) -> tuple[float | None, float | None]:
    c = claims.get(cid) or {}

    def sec(part: str) -> float | None:
        return None if c.get(part) is None else parse_duration(str(c[part]))

    lo, hi = sec("min"), sec("max")
    if hi is None:
        hi = sec("value")
    return lo, hi


def check_cold_start(
    frames: Frames,
    params: ParamsInput | None,
    records: pd.DataFrame | None,
    *,
    profile: Profile | Mapping[str, Mapping[str, Any]] | None = None,
    size_class: str = "small",
    claim_id: str | None = None,
    observation_latency: float = 0.5,
) -> Verdict:
    """``profile``: a Profile or its ``claims`` mapping; ``size_class``: ``small``/``large``."""
    cid = claim_id or f"cold-start-{size_class}"
    claims = profile.claims if isinstance(profile, Profile) else (profile or {})
    quote = str((claims.get(cid) or {}).get("quote", f"cold start ({size_class} model)"))
    key = f"claims.{cid}"
    if records is None or records.empty:
        return skip(CHECK, quote, key, "no request records")
    req = cold_request(frames, records)
    if req is None:
        return skip(CHECK, quote, key, "no request reached the service while it had zero pods")
    t_req = float(req["start"])
    lat = float(req["latency_s"]) if not math.isnan(float(req["latency_s"])) else math.nan
    status = int(req["status"])
    pod = serving_pod(frames, req)
    stamps = {"request": t_req, "response": t_req + lat}
    if pod is not None:
        stamps.update({c: float(pod[c]) for c in ("created", "scheduled", "initialized", "ready")})
    rows = []
    for name, a, b in PHASES:
        ta, tb = stamps.get(a, math.nan), stamps.get(b, math.nan)
        rows.append({"phase": name, "from": a, "to": b, "seconds": tb - ta})
    total = lat
    budget = timing_budget(observation_latency)
    lo, hi = _claim(claims, cid)
    window = Window(None if lo is None else lo - budget.total,
                    None if hi is None else hi + budget.total, "first request", t_req)
    numbers: dict[str, float | None] = {r["phase"]: r["seconds"] for r in rows}
    numbers.update(total=total, not_before=window.not_before, by=window.by)
    observed = (f"{total:.2f} s (" + ", ".join(f"{r['phase']} {r['seconds']:.2f} s"
                                                for r in rows) + f"), HTTP {status}")
    evidence = pd.DataFrame(rows)
    if math.isnan(total) or not 200 <= status < 300:
        return Verdict(CHECK, quote, key, FAIL, expected=window.describe(), observed=observed,
                       why=f"the first request after idle got no successful response "
                       f"(status {status}, {str(req.get('error') or '')[:80]})",
                       window=window, budget=budget, numbers=numbers, evidence=evidence)
    if lo is None and hi is None:
        return skip(CHECK, quote, key, f"the profile has no claim {cid!r}", observed=observed,
                    numbers=numbers, evidence=evidence)
    ok = window.contains(total)
    slowest = max(rows, key=lambda r: -1 if math.isnan(r["seconds"]) else r["seconds"])
    why = "" if ok else (
        f"cold start {total:.1f} s, outside {window.describe()}; slowest phase: "
        f"{slowest['phase']} {slowest['seconds']:.1f} s")
    return Verdict(CHECK, quote, key, PASS if ok else FAIL, expected=window.describe(),
                   observed=observed, why=why, window=window, budget=budget, numbers=numbers,
                   evidence=evidence)
