"""From records to numbers: offered vs achieved per second, latency percentiles, the verdict.

Per second ``s`` of the profile (from the run's origin):

* ``offered``: users asked for (concurrency), arrivals scheduled (rate), or 0 (idle);
* ``achieved``: mean requests in flight over the second (concurrency; the integral of the
  in-flight count from the records' start and latency), open-loop requests sent (rate),
  or requests sent (idle);
* ``sent``, ``errors``, ``not_sent`` and ``p50_ms``/``p99_ms`` of the requests sent in it.

The verdict says whether the *generator* kept up: every arrival sent, sent on time, the
closed-loop users kept their requests in flight, no connection errors, load processes
below the CPU limit. A slow service alone does not fail it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness.load.profile import LoadProfile
from harness.load.records import NOT_SENT
from harness.load.shapes import offered_per_second

CPU_LIMIT = 90.0  # percent of one core, as Locust's own CPU warning
RATE_TOLERANCE = 0.10  # achieved sends per second within 10 % (or 2 requests) of offered
CONCURRENCY_FLOOR = 0.80  # achieved concurrency at least 80 % of offered
LAG_LIMIT = 0.100  # seconds: p99 of (sent - due) for open-loop arrivals


@dataclass(frozen=True)
class LoadVerdict:
    kept_up: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)


def concurrency_per_second(starts: np.ndarray, ends: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Mean number of requests in flight over ``[s, s+1)`` for each ``s`` in ``seconds``
    (times in the same clock as ``starts``/``ends``)."""
    if len(starts) == 0:
        return np.zeros(len(seconds))
    times = np.concatenate([starts, ends])
    steps = np.concatenate([np.ones(len(starts)), -np.ones(len(ends))])
    order = np.argsort(times, kind="stable")
    times, steps = times[order], steps[order]
    level = np.cumsum(steps)  # in flight just after each event
    area = np.concatenate([[0.0], np.cumsum(level[:-1] * np.diff(times))])  # area up to event i

    def integral(t: np.ndarray) -> np.ndarray:
        i = np.searchsorted(times, t, side="right") - 1
        out = np.zeros(len(t))
        ok = i >= 0
        out[ok] = area[i[ok]] + level[i[ok]] * (t[ok] - times[i[ok]])
        return out

    return integral(seconds + 1.0) - integral(seconds)


def per_second(records: pd.DataFrame, profile: LoadProfile, origin: float) -> pd.DataFrame:
    """One row per whole second of the profile; see the module docstring."""
    plan = offered_per_second(profile)
    secs = np.array([s for s, _, _ in plan], dtype=float)
    out = pd.DataFrame({
        "second": np.array([s for s, _, _ in plan], dtype=int),
        "mode": [m for _, m, _ in plan],
        "offered": [o for _, _, o in plan],
    })
    rel = records["start"].to_numpy() - origin
    not_sent = records["error"].str.startswith(NOT_SENT).fillna(False).to_numpy()
    sent = ~not_sent
    failed = sent & ((records["status"].to_numpy() < 200) | (records["status"].to_numpy() >= 400)
                     | (records["error"].fillna("") != "").to_numpy())
    sec_idx = np.floor(rel).astype(int)
    n = len(out)

    def count(mask: np.ndarray) -> np.ndarray:
        idx = sec_idx[mask]
        idx = idx[(idx >= 0) & (idx < n)]
        return np.bincount(idx, minlength=n)[:n]

    out["sent"] = count(sent)
    open_sent = count(sent & (records["loop"] == "open").to_numpy())
    out["errors"] = count(failed)
    out["not_sent"] = count(not_sent)
    lat = records["latency_s"].to_numpy()
    ok = sent & ~np.isnan(lat)
    conc = concurrency_per_second(rel[ok], rel[ok] + lat[ok], secs)
    out["concurrency"] = np.round(conc, 3)
    # rate seconds count open-loop sends only (a closed-loop user may finish its last
    # request just after a segment boundary)
    out["achieved"] = np.where(out["mode"] == "concurrency", out["concurrency"],
                               np.where(out["mode"] == "rate", open_sent, out["sent"])
                               .astype(float))
    p50 = np.full(n, np.nan)
    p99 = np.full(n, np.nan)
    if ok.any():
        frame = pd.DataFrame({"s": sec_idx[ok], "lat": lat[ok] * 1000.0})
        frame = frame[(frame["s"] >= 0) & (frame["s"] < n)]
        q = frame.groupby("s")["lat"].quantile([0.5, 0.99]).unstack()
        if not q.empty:
            p50[q.index.to_numpy()] = q[0.5].to_numpy()
            p99[q.index.to_numpy()] = q[0.99].to_numpy()
    out["p50_ms"] = np.round(p50, 3)
    out["p99_ms"] = np.round(p99, 3)
    return out


def summarize(records: pd.DataFrame, table: pd.DataFrame) -> dict[str, Any]:
    """Totals of a run: requests, errors, latency percentiles, offered vs achieved."""
    not_sent = records["error"].str.startswith(NOT_SENT).fillna(False)
    sent = records[~not_sent]
    failed = (sent["status"] < 200) | (sent["status"] >= 400) | (sent["error"].fillna("") != "")
    lat_ms = sent["latency_s"].dropna().to_numpy() * 1000.0
    pct = (lambda q: round(float(np.percentile(lat_ms, q)), 3)) if len(lat_ms) else (lambda q: None)
    conn = sent[sent["status"] == 0]
    out: dict[str, Any] = {
        "requests": int(len(sent)),
        "errors": int(failed.sum()),
        "connection_errors": int(len(conn)),
        "first_connection_error": str(conn["error"].iloc[0]) if len(conn) else "",
        "not_sent": int(not_sent.sum()),
        "latency_ms": {"p50": pct(50), "p90": pct(90), "p99": pct(99),
                       "max": round(float(lat_ms.max()), 3) if len(lat_ms) else None},
        "pods": {str(k): int(v) for k, v in sent["pod"].value_counts().items() if k},
    }
    for mode in ("rate", "concurrency"):
        part = table[table["mode"] == mode]
        if len(part):
            out[mode] = {
                "seconds": int(len(part)),
                "offered": round(float(part["offered"].sum() if mode == "rate"
                                       else part["offered"].mean()), 3),
                "achieved": round(float(part["achieved"].sum() if mode == "rate"
                                        else part["achieved"].mean()), 3),
            }
    if "scheduled" in records and records["scheduled"].notna().any():
        open_sent = sent[sent["scheduled"].notna()]
        lag = (open_sent["start"] - open_sent["scheduled"]).to_numpy()
        out["open_loop_lag_ms"] = {
            "p50": round(float(np.percentile(lag, 50)) * 1000, 3) if len(lag) else None,
            "p99": round(float(np.percentile(lag, 99)) * 1000, 3) if len(lag) else None,
        }
    return out


def verdict(
    table: pd.DataFrame,
    summary: dict[str, Any],
    *,
    cpu_max: float = 0.0,
    drained: bool = True,
    exit_code: int = 0,
) -> LoadVerdict:
    """Did the load generator produce what the profile asked for?"""
    reasons: list[str] = []
    if summary["not_sent"]:
        reasons.append(f"{summary['not_sent']} open-loop arrivals not sent (max_in_flight reached)")
    body = table.iloc[:-1] if len(table) > 1 else table  # the last second may be cut short
    rate = body[body["mode"] == "rate"]
    if len(rate):
        slack = np.maximum(2.0, RATE_TOLERANCE * rate["offered"])
        behind = int(((rate["achieved"] - rate["offered"]).abs() > slack).sum())
        if behind:
            reasons.append(f"open-loop rate off schedule in {behind} of {len(rate)} seconds")
    lag = (summary.get("open_loop_lag_ms") or {}).get("p99")
    if lag is not None and lag > LAG_LIMIT * 1000:
        reasons.append(f"open-loop arrivals sent late (p99 lag {lag:.0f} ms)")
    conc = body[body["mode"] == "concurrency"]
    if len(conc):
        changed = conc["offered"].ne(table["offered"].shift(1).loc[conc.index])
        steady = conc[~changed & (conc["offered"] > 0)]
        low = int((steady["achieved"] < CONCURRENCY_FLOOR * steady["offered"]).sum())
        if low:
            reasons.append(f"concurrency below {CONCURRENCY_FLOOR:.0%} of target in {low} of "
                           f"{len(steady)} steady seconds")
    if summary["connection_errors"]:
        reasons.append(f"{summary['connection_errors']} connection errors "
                       f"(first: {summary['first_connection_error']})")
    if cpu_max >= CPU_LIMIT:
        reasons.append(f"load process CPU saturated (max {cpu_max:.0f} % of a core)")
    if not drained:
        reasons.append("run stopped before every request was answered")
    if exit_code not in (0, None):
        reasons.append(f"Locust exited with code {exit_code}")
    return LoadVerdict(kept_up=not reasons, reasons=tuple(reasons))
