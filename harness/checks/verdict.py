"""Verdicts, expected windows and error budgets: what every check returns.

A :class:`Verdict` names the documented claim and the profile key it comes from, the
expected window (``not_before`` and ``by``, seconds after a named anchor), what was
observed, the status, one line of why, and evidence rows. Statuses: ``pass``, ``fail``,
``inconclusive`` (the run produced no evidence for a part of the claim, e.g. a phase
without requests: a failing status, never a pass) and ``skip`` (the check does not apply
or could not be decided from the data given).
A :class:`Budget` is the error allowed on a timing claim, made of named terms (decision
tick, metric period, observation latency, measured pod start-up), never a bare number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harness.params import BUCKET_SIZE, TICK_INTERVAL

PASS, FAIL, SKIP = "pass", "fail", "skip"
INCONCLUSIVE = "inconclusive"
STATUSES = (FAIL, INCONCLUSIVE, PASS, SKIP)
"""In the order a report lists them: failures first."""
FAILING = frozenset({FAIL, INCONCLUSIVE})
"""Statuses that fail a run."""

DECISION_TICK = "decision tick"
METRIC_PERIOD = "metric period"
OBSERVATION_LATENCY = "observation latency"
POD_STARTUP = "pod start-up (measured)"
ACTUATION = "actuation"
"""From the KPA's decision to the watched effect: the Deployment patch, its controller and
the kubelet deleting or starting the pod (``knative-kpa.md`` §8.4)."""
DEFAULT_ACTUATION = 1.0
DEFAULT_OBSERVATION_LATENCY = 0.5
"""Seconds between a change in the cluster and its watch event reaching the recorder,
when the caller measured nothing better."""

MAX_EVIDENCE_ROWS = 200


@dataclass(frozen=True)
class Budget:
    """An error budget in seconds: the sum of named terms."""

    terms: Mapping[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return float(sum(self.terms.values()))

    def describe(self) -> str:
        parts = " + ".join(f"{v:g} s {k}" for k, v in self.terms.items())
        return f"{parts} = {self.total:g} s" if parts else "0 s"

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.terms.items()}


def timing_budget(
    observation_latency: float = DEFAULT_OBSERVATION_LATENCY,
    pod_startup: float | None = None,
    *,
    tick: bool = True,
    metric: bool = True,
) -> Budget:
    """The standard budget: decision tick, metric period, observation latency (+ start-up)."""
    terms: dict[str, float] = {}
    if tick:
        terms[DECISION_TICK] = TICK_INTERVAL
    if metric:
        terms[METRIC_PERIOD] = BUCKET_SIZE
    terms[OBSERVATION_LATENCY] = float(observation_latency)
    if pod_startup is not None:
        terms[POD_STARTUP] = round(float(pod_startup), 3)
    return Budget(terms)


@dataclass(frozen=True)
class Window:
    """Expected interval, in seconds after ``anchor`` (at epoch ``anchor_time``)."""

    not_before: float | None
    by: float | None
    anchor: str = ""
    anchor_time: float | None = None

    def contains(self, x: float) -> bool:
        lo = -math.inf if self.not_before is None else self.not_before
        hi = math.inf if self.by is None else self.by
        return lo <= x <= hi

    def describe(self) -> str:
        lo = "-" if self.not_before is None else f"{self.not_before:.1f} s"
        hi = "-" if self.by is None else f"{self.by:.1f} s"
        return f"not before {lo}, by {hi} after {self.anchor or 'start'}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "not_before": self.not_before,
            "by": self.by,
            "anchor": self.anchor,
            "anchor_time": self.anchor_time,
        }


@dataclass(frozen=True, eq=False)
class Verdict:
    """One check's outcome for one documented claim."""

    check: str
    """Check id (``scale-down``, ``panic-entry``, ...)."""
    claim: str
    """The documented claim, in words."""
    claim_key: str
    """Where the claim comes from: a profile key (``config-autoscaler.scale-down-delay``,
    ``claims.cold-start-small``) or the knob's source."""
    status: str
    """``pass``, ``fail``, ``inconclusive`` or ``skip``."""
    expected: str
    observed: str
    why: str = ""
    """One line: why it failed (or was skipped); empty on a pass."""
    window: Window | None = None
    budget: Budget | None = None
    numbers: Mapping[str, float | None] = field(default_factory=dict)
    """Expected and observed figures by name (seconds, pods)."""
    evidence: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def passed(self) -> bool:
        return self.status == PASS

    @property
    def failed(self) -> bool:
        """Failed or inconclusive: either fails the run."""
        return self.status in FAILING

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (evidence as at most :data:`MAX_EVIDENCE_ROWS` records)."""
        ev = self.evidence.head(MAX_EVIDENCE_ROWS)
        records = ev.astype(object).where(ev.notna(), None).to_dict(orient="records")
        return {
            "check": self.check,
            "claim": self.claim,
            "claim_key": self.claim_key,
            "status": self.status,
            "expected": self.expected,
            "observed": self.observed,
            "why": self.why,
            "window": None if self.window is None else self.window.as_dict(),
            "budget": None if self.budget is None else self.budget.as_dict(),
            "numbers": {k: _num(v) for k, v in self.numbers.items()},
            "evidence": records,
            "evidence_rows": int(len(self.evidence)),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Verdict:
        w = d.get("window")
        b = d.get("budget")
        return cls(
            check=str(d["check"]),
            claim=str(d.get("claim", "")),
            claim_key=str(d.get("claim_key", "")),
            status=str(d["status"]),
            expected=str(d.get("expected", "")),
            observed=str(d.get("observed", "")),
            why=str(d.get("why", "")),
            window=None if not w else Window(**w),
            budget=None if b is None else Budget(dict(b)),
            numbers=dict(d.get("numbers") or {}),
            evidence=pd.DataFrame(list(d.get("evidence") or [])),
        )


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) or math.isinf(f) else f


def inconclusive(check: str, claim: str, claim_key: str, why: str, **kw: Any) -> Verdict:
    """A verdict without evidence for part of the claim: fails the run, never a pass."""
    return Verdict(check, claim, claim_key, INCONCLUSIVE, kw.pop("expected", ""),
                   kw.pop("observed", "no evidence"), why=why, **kw)


def skip(check: str, claim: str, claim_key: str, why: str, **kw: Any) -> Verdict:
    """A verdict that could not be decided from the data (never a silent pass)."""
    return Verdict(check, claim, claim_key, SKIP, kw.pop("expected", ""),
                   kw.pop("observed", "not observed"), why=why, **kw)
