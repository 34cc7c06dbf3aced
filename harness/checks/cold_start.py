"""Check 7, cold start: the first request to a zero-scaled service, split into phases.

The phases add up to the total (request sent -> response read). Each boundary is the
receive time of the first watch event that shows it (API timestamps have one-second
resolution), so the split reads the same on the emulator and on real Knative/KServe:

* autoscaler reaction: request sent -> the PodAutoscaler's desiredScale leaves 0 (the
  activator's stat reached the autoscaler and the decider scaled);
* pod creation: -> the new pod exists (the KPA scaled the Deployment, the ReplicaSet
  made the pod);
* scheduling: -> PodScheduled=True;
* storage initializer: -> Initialized=True (init containers, KServe's model download;
  about nothing when the predictor has no storageUri);
* container start: -> every container running (``state.running``);
* queue-proxy and model ready: -> Ready=True (the model server loads, queue-proxy's
  readiness probe passes);
* first response: -> the response read.

A boundary that was not observed (no PodAutoscaler recorded, say) merges its phase into
the next one (shown as NaN), and so does one seen only after a later boundary: Knative's
activator probes a new pod itself and forwards the request as soon as queue-proxy
answers, while the kubelet's Ready can come up to a readiness period (10 s for
queue-proxy's probe) later; the verdict then says Ready came after the response. The total is
compared with the profile's claim for the model's size class (``claims.cold-start-<size>``,
or any claim id given).
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
from harness.observe.series import one_pa, step_value
from harness.profiles import Profile

CHECK = "cold-start"
PHASES: tuple[tuple[str, str, str], ...] = (
    ("autoscaler reaction", "request", "desired"),
    ("pod creation", "desired", "created"),
    ("scheduling", "created", "scheduled"),
    ("storage initializer", "scheduled", "initialized"),
    ("container start", "initialized", "started"),
    ("queue-proxy and model ready", "started", "ready"),
    ("first response", "ready", "response"),
)
POD_STAMPS = ("created", "scheduled", "initialized", "started", "ready")


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


def scale_up_seen(frames: Frames, t_req: float) -> float:
    """When the PodAutoscaler's desiredScale was first seen above 0 after ``t_req``,
    having been 0 (or unknown) then; NaN when no such change was recorded."""
    scale = one_pa(frames.scale)
    if scale.empty:
        return math.nan
    before = float(step_value(scale, t_req, "desired", math.nan))
    if before >= 1:
        return math.nan
    later = scale[(scale["time"] >= t_req) & (scale["desired"] >= 1)]
    return math.nan if later.empty else float(later["time"].iloc[0])


def phase_rows(stamps: Mapping[str, float]) -> list[dict[str, Any]]:
    """The :data:`PHASES` from boundary stamps: each phase runs from the last boundary
    seen before it (NaN when its own end was not seen, or was seen only after a later
    boundary), so the phases never go negative and always sum to response - request."""
    order = [PHASES[0][1]] + [b for _, _, b in PHASES]
    kept: dict[str, float] = {}
    bound = math.inf
    for key in reversed(order):
        t = float(stamps.get(key, math.nan))
        if t > bound:       # seen only after a later boundary: not observed in time
            t = math.nan
        if not math.isnan(t):
            bound = t
        kept[key] = t
    rows = []
    prev_key, prev_t = order[0], kept[order[0]]
    for name, _, b in PHASES:
        tb = kept[b]
        seconds = tb - prev_t if not math.isnan(tb) else math.nan
        rows.append({"phase": name, "from": prev_key, "to": b, "seconds": seconds,
                     "at": tb - kept[order[0]]})
        if not math.isnan(tb):
            prev_key, prev_t = b, tb
    return rows


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
    stamps = {"request": t_req, "response": t_req + lat, "desired": scale_up_seen(frames, t_req)}
    if pod is not None:
        stamps.update({c: float(pod[c]) for c in POD_STAMPS})
    rows = phase_rows(stamps)
    total = lat
    budget = timing_budget(observation_latency)
    lo, hi = _claim(claims, cid)
    window = Window(None if lo is None else lo - budget.total,
                    None if hi is None else hi + budget.total, "first request", t_req)
    numbers: dict[str, float | None] = {r["phase"]: r["seconds"] for r in rows}
    numbers.update(total=total, not_before=window.not_before, by=window.by)
    observed = (f"{total:.2f} s (" + ", ".join(f"{r['phase']} {r['seconds']:.2f} s"
                                                for r in rows if not math.isnan(r["seconds"]))
                + f"), HTTP {status}")
    t_ready = stamps.get("ready", math.nan)
    if pod is not None and not math.isnan(total) and not t_ready <= stamps["response"]:
        observed += ("; the pod was not Ready yet when the response came (the activator "
                     "forwards once its own probe of the pod passes)")
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
