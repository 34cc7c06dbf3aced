"""Differential check of the reference model against Knative's own code (the upstream engine).

:func:`random_scenario` draws a scenario document (the format of ``harness simulate``
scenario files) from a seeded generator: loads with bursts, ramps and idle gaps; every
``config-autoscaler`` key and revision annotation across its valid range;
containerConcurrency 0, 1 or N; 1 to 100 pods. :func:`differential` runs each through
the model (:func:`harness.kpa.simulate`) and, all in ONE oracle process, through the
upstream engine (:mod:`harness.kpa.upstream`), which parses the raw config and
annotations itself, so the parameter resolver is checked as well. Every row must agree:
decider and desired exactly, the window averages within :data:`TOLERANCE`, every
other column exactly; a scenario both sides refuse agrees.

:func:`shrink` reduces a diverging scenario to a small one that still diverges (drop
keys and segments, shorten, lower loads and pods), for a regression fixture.

``python -m harness.kpa.differential --count 20000`` prints the count and the
agreement rate (``make oracle``).
"""

from __future__ import annotations

import argparse
import copy
import math
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from harness.errors import UserError
from harness.kpa.scenario import scenario_from_dict
from harness.kpa.simulate import COLUMNS, simulate_columns
from harness.kpa.upstream import UPSTREAM_DIR, oracle_input, run_many
from harness.objects import AUTOSCALING_PREFIX as A

__all__ = [
    "TOLERANCE",
    "Outcome",
    "Report",
    "compare",
    "differential",
    "outcomes",
    "random_scenario",
    "shrink",
]

TOLERANCE = 1e-6
"""Absolute (and relative) tolerance on the stable and panic averages."""
AVERAGES = ("stable", "panic")


# --- the generator ----------------------------------------------------------------


def _dur(rng: random.Random, lo: int, hi: int) -> str:
    s = rng.randint(lo, hi)
    return rng.choice([f"{s}s", f"{s // 60}m{s % 60}s" if s >= 60 else f"{s}s"])


def _pct(rng: random.Random) -> str:
    # container-concurrency-target-percentage: percent (> 1) or a fraction (<= 1)
    if rng.random() < 0.8:
        return f"{rng.uniform(1.01, 100):.3g}"
    return f"{rng.uniform(0.05, 1.0):.2f}"


def _config(rng: random.Random, long: bool) -> dict[str, str]:
    c: dict[str, str] = {}
    maybe = lambda p=0.45: rng.random() < p  # noqa: E731
    if maybe():
        c["container-concurrency-target-percentage"] = _pct(rng)
    if maybe():
        base = rng.choice([1, 2, 5, 10, 50, 100, 250])
        c["container-concurrency-target-default"] = f"{base * rng.uniform(0.5, 1.5):.4g}"
    if maybe():
        c["requests-per-second-target-default"] = f"{rng.uniform(1, 300):.4g}"
    if maybe():
        c["target-burst-capacity"] = rng.choice(["-1", "0", f"{rng.uniform(0, 400):.3g}", "211"])
    if maybe(0.6):
        c["stable-window"] = _dur(rng, 6, 3600 if long else 180)
    if maybe():
        c["panic-window-percentage"] = f"{rng.uniform(1, 100):.3g}"
    if maybe():
        c["panic-threshold-percentage"] = f"{rng.uniform(110, 1000):.4g}"
    if maybe():
        c["max-scale-up-rate"] = f"{rng.choice([1.1, 1.5, 2, 10, 1000]) * rng.uniform(1, 1.2):.4g}"
    if maybe():
        c["max-scale-down-rate"] = f"{rng.uniform(1.05, 10):.3g}"
    if maybe():
        c["enable-scale-to-zero"] = rng.choice(["true", "false"])
    if maybe():
        c["scale-to-zero-grace-period"] = _dur(rng, 1, 90)
    if maybe():
        c["scale-to-zero-pod-retention-period"] = _dur(rng, 0, 120)
    if maybe():
        c["scale-down-delay"] = _dur(rng, 0, 120)
    if maybe(0.2):
        c["activator-capacity"] = f"{rng.uniform(1, 500):.4g}"
    if maybe(0.3):
        allow = rng.random() < 0.5
        c["allow-zero-initial-scale"] = "true" if allow else "false"
        c["initial-scale"] = str(rng.randint(0 if allow else 1, 5))
    if maybe(0.3):
        lo = rng.choice([0, 0, 1, 2, 3])
        c["min-scale"] = str(lo)
        if maybe(0.5):
            c["max-scale"] = str(rng.randint(max(lo, 1), max(lo, 1) + 20))
    if maybe(0.1):
        c["max-scale-limit"] = str(rng.randint(int(c.get("max-scale", "0")) or 1, 200))
        if c.get("max-scale", "0") == "0":
            c["max-scale"] = c["max-scale-limit"]
    return c


def _annotations(rng: random.Random, config: dict[str, str], long: bool) -> dict[str, str]:
    a: dict[str, str] = {}
    maybe = lambda p=0.35: rng.random() < p  # noqa: E731
    if maybe(0.3):
        a[A + "metric"] = rng.choice(["concurrency", "rps"])
    if maybe():
        a[A + "target"] = f"{rng.choice([0.5, 1, 3, 10, 70, 150]) * rng.uniform(0.5, 1.5):.4g}"
    if maybe():
        a[A + "target-utilization-percentage"] = f"{rng.uniform(1, 100):.3g}"
    if maybe(0.25):
        a[A + "target-burst-capacity"] = rng.choice(["-1", "0", f"{rng.uniform(0, 300):.3g}"])
    if maybe():
        a[A + "window"] = _dur(rng, 6, 3600 if long else 150)
    if maybe(0.25):
        a[A + "panic-window-percentage"] = f"{rng.uniform(1, 100):.3g}"
    if maybe(0.25):
        a[A + "panic-threshold-percentage"] = f"{rng.uniform(110, 1000):.4g}"
    if maybe(0.3):
        a[A + "scale-down-delay"] = _dur(rng, 0, 120)
    if maybe(0.25):
        a[A + "scale-to-zero-pod-retention-period"] = _dur(rng, 0, 120)
    if maybe(0.2):
        a[A + "metric-aggregation-algorithm"] = rng.choice(
            ["linear", "weighted-exponential", "weightedExponential"])
    cmax = int(config.get("max-scale", "0"))
    limit = int(config.get("max-scale-limit", "0"))
    if maybe(0.25):
        lo = rng.choice([0, 1, 2, 4])
        a[A + "min-scale"] = str(lo)
    if maybe(0.2):
        lo = int(a.get(A + "min-scale", config.get("min-scale", "0")))
        hi = rng.randint(max(lo, 1), max(lo, 1) + 30)
        if limit:
            hi = min(hi, limit)
        if hi >= lo:
            a[A + "max-scale"] = str(hi)
    if maybe(0.2):
        allow = config.get("allow-zero-initial-scale") == "true"
        a[A + "initial-scale"] = str(rng.randint(0 if allow else 1, 6))
    if maybe(0.2):
        lo = int(a.get(A + "min-scale", config.get("min-scale", "0")))
        hi = int(a.get(A + "max-scale", str(cmax)))
        act = rng.randint(max(2, lo), max(2, lo) + 4)
        if hi == 0 or act <= hi:
            a[A + "activation-scale"] = str(act)
    return a


def _load(rng: random.Random, per_pod: float, pods: int, long: bool) -> list[dict[str, Any]]:
    segs: list[dict[str, Any]] = []
    total = 0.0
    budget = rng.choice([40, 90, 150, 300, 600] + ([1400] if long else []))
    peak = per_pod * max(pods, 1) * rng.choice([0.3, 1, 2, 5, 20])
    level = rng.choice([0.0, peak * rng.random()])
    while total < budget:
        kind = rng.random()
        if kind < 0.2:  # idle gap
            value, dur = 0.0, rng.choice([1, 2, 3, 5, 20, 40, 90])
        elif kind < 0.4:  # burst
            value, dur = peak * rng.uniform(1, 4), rng.choice([0.5, 1, 2, 5, 10, 30])
        elif kind < 0.6:  # ramp: a few short steps
            steps = rng.randint(3, 8)
            target = peak * rng.random()
            for i in range(1, steps + 1):
                v = level + (target - level) * i / steps
                d = rng.choice([1, 2, 3, 5])
                segs.append({"for": d, "concurrency": round(v, 3), "rps": round(v, 3)})
                total += d
            level = target
            continue
        else:  # steady, maybe fractional length (edges inside a second)
            value = max(0.0, level + rng.gauss(0, peak * 0.2))
            dur = rng.choice([1.5, 3, 7, 15, 30, 60])
        v = round(value, 3)
        segs.append({"for": dur, "concurrency": v, "rps": v})
        total += dur
        level = value
    return segs


EDGES: tuple[tuple[str, str, str], ...] = (
    # (config|annotations, key, value): just outside (or on) a valid range's edge
    ("annotations", A + "window", "5s"),
    ("annotations", A + "window", "3601s"),
    ("annotations", A + "window", "6500ms"),
    ("annotations", A + "target", "0.009"),
    ("annotations", A + "target-utilization-percentage", "0.5"),
    ("annotations", A + "target-utilization-percentage", "101"),
    ("annotations", A + "panic-threshold-percentage", "109"),
    ("annotations", A + "panic-threshold-percentage", "1001"),
    ("annotations", A + "panic-window-percentage", "0.5"),
    ("annotations", A + "scale-down-delay", "3601s"),
    ("annotations", A + "scale-down-delay", "1500ms"),
    ("annotations", A + "activation-scale", "1"),
    ("annotations", A + "initial-scale", "0"),
    ("annotations", A + "min-scale", "-1"),
    ("annotations", A + "max-scale", "-1"),
    ("annotations", A + "metric", "cpu"),
    ("annotations", A + "target-burst-capacity", "-2"),
    ("annotations", A + "metric-aggregation-algorithm", "median"),
    ("config", "stable-window", "5s"),
    ("config", "scale-down-delay", "1500ms"),
    ("config", "max-scale-up-rate", "1"),
    ("config", "max-scale-down-rate", "1.0"),
    ("config", "container-concurrency-target-percentage", "0"),
    ("config", "target-burst-capacity", "-3"),
    ("config", "scale-to-zero-grace-period", "0s"),
    ("config", "initial-scale", "0"),
    ("config", "min-scale", "5"),
    ("config", "max-scale-limit", "3"),
    ("config", "panic-window-percentage", "101"),
)
"""Values on or just past an edge, planted now and then: both sides must refuse (or accept)."""


def random_scenario(rng: random.Random) -> dict[str, Any]:
    """A scenario document (see :mod:`harness.kpa.scenario`) drawn from ``rng``."""
    long = rng.random() < 0.1
    config = _config(rng, long)
    annotations = _annotations(rng, config, long)
    cc = rng.choice([0, 0, 1, rng.randint(2, 10), rng.randint(10, 1000)])
    pods = rng.choice([0, 1, 1, 2, 3, 5, 10, rng.randint(1, 100)])
    default = config.get("container-concurrency-target-default", "100")
    per_pod = float(annotations.get(A + "target", default))
    if cc:
        per_pod = min(per_pod, cc)
    doc: dict[str, Any] = {
        "config": config,
        "annotations": annotations,
        "container_concurrency": cc,
        "initial_ready": pods,
        "load": _load(rng, per_pod * 0.7, pods, long),
    }
    if rng.random() < 0.04:
        where, key, value = rng.choice(EDGES)
        doc[where][key] = value
    if rng.random() < 0.25:
        doc["fresh"] = True
    if rng.random() < 0.1:
        doc["hold_ready"] = True
    if rng.random() < 0.1:
        doc["reachable"] = False
    if rng.random() < 0.7:
        doc["pod_startup"] = rng.choice([0, 1, 2, 5, 10, 30, 60] + ([700] if long else []))
    if rng.random() < 0.2:
        doc["history"] = round(per_pod * max(pods, 1) * rng.random(), 3)
    if rng.random() < 0.3:
        doc["until"] = sum(s["for"] for s in doc["load"]) + rng.choice([10, 60, 200])
    return doc


# --- comparing ----------------------------------------------------------------------


def compare(model: dict[str, list[Any]], upstream: dict[str, list[Any]]) -> list[str]:
    """Differences between two runs' columns, as readable lines (empty: they agree)."""
    out: list[str] = []
    n, m = len(model["t"]), len(upstream["t"])
    if n != m:
        out.append(f"{n} model rows, {m} upstream rows")
    for i in range(min(n, m)):
        for c in COLUMNS:
            a, b = model[c][i], upstream[c][i]
            if c in AVERAGES:
                ok = math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
            else:
                ok = a == b
            if not ok:
                out.append(f"t={model['t'][i]} {c}: model {a!r}, upstream {b!r}")
        if len(out) > 20:
            break
    return out


@dataclass
class Outcome:
    """One scenario's verdict."""

    index: int
    doc: dict[str, Any]
    differences: list[str] = field(default_factory=list)
    refused: bool = False
    """Both sides refused the document (an agreement)."""

    @property
    def agrees(self) -> bool:
        return not self.differences


@dataclass
class Report:
    count: int = 0
    agreed: int = 0
    refused: int = 0
    """Scenarios both sides refused (counted as agreement)."""
    divergences: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.agreed / self.count if self.count else 1.0


def _model(doc: dict[str, Any]) -> tuple[Any, dict[str, list[Any]] | None, str | None]:
    try:
        sc = scenario_from_dict(copy.deepcopy(doc), where="<random>")
    except UserError as exc:
        return None, None, str(exc)
    cols = simulate_columns(sc.params, sc.load, sc.pod_startup, initial_ready=sc.initial_ready,
                            hold_ready=sc.hold_ready, fresh=sc.fresh, history=sc.history,
                            until=sc.until, reachable=sc.reachable)
    return sc, cols, None


def _raw_input(doc: dict[str, Any], sc: Any, i: int) -> dict[str, Any]:
    if sc is None:  # the model refused: still ask upstream, with the document's own load
        sc = _Unresolved(doc)
    return oracle_input(sc, id=i, config=doc.get("config") or {},
                        annotations=doc.get("annotations") or {},
                        container_concurrency=doc.get("container_concurrency") or 0)


class _Unresolved:
    """Enough of a Scenario for :func:`oracle_input` when the model refused the document."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.load = (0.0,)
        self.pod_startup = 0.0
        self.initial_ready = int(doc.get("initial_ready", 1) or 0)
        self.hold_ready = False
        self.fresh = False
        self.history = None
        self.until = None
        self.reachable = True


def outcomes(docs: list[dict[str, Any]]) -> Iterator[Outcome]:
    """Each document through both engines (one oracle process for all of them)."""
    models = [_model(d) for d in docs]
    inputs = (_raw_input(d, m[0], i) for i, (d, m) in enumerate(zip(docs, models, strict=True)))
    for i, answer in enumerate(run_many(inputs)):
        sc, cols, refused = models[i]
        out = Outcome(i, docs[i])
        if "error" in answer or refused is not None:
            if refused is None:
                out.differences = [f"upstream refused, the model accepted: {answer['error']}"]
            elif "error" not in answer:
                out.differences = [f"the model refused, upstream accepted: {refused}"]
        else:
            assert cols is not None
            out.differences = compare(cols, answer["columns"])
        out.refused = refused is not None and "error" in answer
        yield out


def differential(count: int, seed: int, *, keep: int = 20) -> Report:
    """``count`` random scenarios from ``seed`` through both engines."""
    rng = random.Random(seed)
    docs = [random_scenario(rng) for _ in range(count)]
    report = Report()
    start = time.monotonic()
    for out in outcomes(docs):
        report.count += 1
        if out.agrees:
            report.agreed += 1
            report.refused += int(out.refused)
        elif len(report.divergences) < keep:
            report.divergences.append(out)
    report.seconds = time.monotonic() - start
    return report


# --- shrinking ----------------------------------------------------------------------


def _candidates(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in ("config", "annotations"):
        for k in list(doc.get(key) or {}):
            d = copy.deepcopy(doc)
            del d[key][k]
            yield d
    for k in ("history", "until", "hold_ready", "fresh", "pod_startup"):
        if k in doc:
            d = copy.deepcopy(doc)
            del d[k]
            yield d
    segs = doc["load"]
    if len(segs) > 1:
        for i in range(len(segs)):
            d = copy.deepcopy(doc)
            del d["load"][i]
            yield d
    for i, s in enumerate(segs):
        if s["for"] > 1:
            d = copy.deepcopy(doc)
            d["load"][i]["for"] = max(1, math.floor(s["for"] / 2))
            yield d
        for m in ("concurrency", "rps"):
            if s.get(m):
                d = copy.deepcopy(doc)
                d["load"][i][m] = round(s[m] / 2, 3) if s[m] > 1 else 0
                yield d
    if doc.get("initial_ready", 1) > 1:
        d = copy.deepcopy(doc)
        d["initial_ready"] = doc["initial_ready"] // 2
        yield d
    if doc.get("container_concurrency", 0) > 1:
        d = copy.deepcopy(doc)
        d["container_concurrency"] = doc["container_concurrency"] // 2
        yield d


def shrink(doc: dict[str, Any], *, rounds: int = 200,
           diverges: Callable[[list[dict[str, Any]]], list[bool]] | None = None
           ) -> dict[str, Any]:
    """A smaller document that still diverges (greedy: first candidate that does)."""
    check = diverges or (lambda ds: [not o.agrees for o in outcomes(ds)])
    for _ in range(rounds):
        cands = list(_candidates(doc))
        if not cands:
            break
        verdicts = check(cands)
        for cand, bad in zip(cands, verdicts, strict=True):
            if bad:
                doc = cand
                break
        else:
            break
    return doc


# --- make oracle -----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.kpa.differential",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=20260)
    ap.add_argument("--shrink", action="store_true", help="shrink and print the first divergence")
    args = ap.parse_args(argv)
    try:
        report = differential(args.count, args.seed)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"differential check against {UPSTREAM_DIR.name}/ (Knative's own autoscaler code): "
          f"{report.count} scenarios, {report.agreed} agree ({report.rate:.4%}), "
          f"{report.refused} refused by both, {report.count - report.agreed} diverge; "
          f"{report.seconds:.1f} s")
    for out in report.divergences[:5]:
        print(f"- scenario #{out.index}: " + "; ".join(out.differences[:3]))
    if args.shrink and report.divergences:
        import json

        small = shrink(report.divergences[0].doc)
        print(json.dumps(small))
    return 0 if report.agreed == report.count else 1


if __name__ == "__main__":
    sys.exit(main())
