"""Offered load from the load runner's request records (``harness.load.records``).

The reference model wants the revision-wide concurrency (or rps) per second. A record
``(start, latency_s)`` is in flight over ``[start, start + latency_s)``; each second's
concurrency is the in-flight time that falls into it. Records never sent (``not sent:``)
are skipped; records without a latency (no response) count until ``end``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

LOAD_COLUMNS: tuple[str, ...] = ("time", "concurrency", "rps")
"""Per-second offered load: ``time`` the second's start (epoch s), ``concurrency`` the
average number of requests in flight during it, ``rps`` requests sent during it."""

NOT_SENT = "not sent: "


def sent(records: pd.DataFrame) -> pd.DataFrame:
    """Records that were actually sent."""
    if records.empty or "error" not in records:
        return records
    err = records["error"].astype(object).fillna("").astype(str)
    return records[~err.str.startswith(NOT_SENT)]


def offered_load(
    records: pd.DataFrame, start: float, end: float | None = None
) -> pd.DataFrame:
    """Per-second load (:data:`LOAD_COLUMNS`) from ``start`` (epoch s) to ``end``."""
    recs = sent(records)
    if end is None:
        done = recs["start"] + recs["latency_s"].fillna(0.0) if not recs.empty else []
        end = float(max(done)) if len(done) else start
    n = max(1, int(math.ceil(end - start)))
    conc = np.zeros(n)
    rps = np.zeros(n)
    for s, lat in zip(recs["start"].to_numpy(float), recs["latency_s"].to_numpy(float),
                      strict=True):
        a = s - start
        b = (end - start) if lat != lat else a + lat
        if 0 <= a < n:
            rps[int(a)] += 1
        a, b = max(a, 0.0), min(b, float(n))
        if b <= a:
            continue
        i0, i1 = int(a), int(math.ceil(b))
        for k in range(i0, min(i1, n)):
            conc[k] += min(b, k + 1.0) - max(a, float(k))
    return pd.DataFrame(
        {"time": start + np.arange(n, dtype=float), "concurrency": conc, "rps": rps}
    )
