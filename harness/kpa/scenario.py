"""Scenario files for ``harness simulate``: what to simulate, read and checked from YAML.

A scenario names the parameters and the load; everything but ``load`` is optional::

    profile: coreweave            # shipped name or path (harness.profiles)
    config:                       # config-autoscaler keys overriding the profile's
      scale-down-delay: 0s
    annotations:                  # revision annotations overriding the profile's
      autoscaling.knative.dev/window: 120s
    container_concurrency: 1
    initial_ready: 10             # ready pods at t = 0 (default 1)
    fresh: false                  # true: the revision is created at t = 0
    hold_ready: false             # true: ready pods stay at initial_ready
    reachable: true               # false: no route points at the revision (routingState
                                  # reserve): min-scale and retention ignored, no delay
    pod_startup: 30s              # scale-up decision -> pod ready
    history: 8.5                  # load seen before t = 0 (default: the first second's)
    load:                         # revision-wide totals, one segment after another
      - {for: 5m, concurrency: 8.5}
      - {for: 15m, rps: 0, concurrency: 0}
    until: 20m                    # default: the end of the load

Durations are Go-style strings (``90s``, ``1m30s``) or plain seconds. A segment gives
``concurrency`` or ``rps`` or both; the model uses the one the revision scales on.
Every mistake is a :class:`~harness.errors.UserError` naming the file and the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.durations import DurationError, parse_duration
from harness.errors import UserError
from harness.files import data_path, read_yaml
from harness.kpa.simulate import simulate
from harness.params import KPAParams
from harness.profiles import load_profile
from harness.resolve import resolve

__all__ = [
    "ENGINES",
    "KEYS",
    "Scenario",
    "Segment",
    "load_scenario",
    "per_second",
    "scenario_from_dict",
]

KEYS = (
    "name",
    "description",
    "profile",
    "config",
    "annotations",
    "container_concurrency",
    "initial_ready",
    "fresh",
    "hold_ready",
    "reachable",
    "pod_startup",
    "history",
    "load",
    "until",
)
SEGMENT_KEYS = ("for", "concurrency", "rps")
ENGINES = ("model", "upstream")
"""``model``: the reference model; ``upstream``: Knative's own code (:mod:`.upstream`)."""
MAX_SECONDS = 7 * 24 * 3600
"""Longest scenario accepted (a week of virtual time)."""


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of constant load: ``duration`` seconds of revision-wide totals."""

    duration: float
    concurrency: float | None = None
    rps: float | None = None


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: effective parameters, start state and the load trace."""

    params: KPAParams
    segments: tuple[Segment, ...]
    load: tuple[float, ...]
    """Per-second values of the metric the revision scales on."""
    initial_ready: int = 1
    fresh: bool = False
    hold_ready: bool = False
    reachable: bool = True
    pod_startup: float = 0.0
    history: float | None = None
    until: float | None = None
    sources: dict[str, str] = field(default_factory=dict)
    """Field name -> where its value came from (see :func:`harness.resolve.resolve`)."""
    where: str = "<scenario>"
    name: str = ""

    def run(self, engine: str = "model") -> pd.DataFrame:
        """Simulate the scenario: one row per tick (see :data:`harness.kpa.COLUMNS`).

        ``engine``: ``model`` (:func:`harness.kpa.simulate`) or ``upstream`` (Knative's own
        autoscaler code, :mod:`harness.kpa.upstream`; built on first use).
        """
        if engine == "upstream":
            from harness.kpa.upstream import simulate_upstream

            return simulate_upstream(self)
        if engine != "model":
            raise ValueError(f"unknown engine {engine!r}; allowed: {', '.join(ENGINES)}")
        return simulate(
            self.params,
            self.load,
            self.pod_startup,
            initial_ready=self.initial_ready,
            hold_ready=self.hold_ready,
            fresh=self.fresh,
            history=self.history,
            until=self.until,
            reachable=self.reachable,
        )


def find_scenario(name_or_path: str | Path) -> Path:
    """A shipped scenario name (``burst``, from ``fixtures/scenarios/``) or a file path."""
    text = str(name_or_path)
    shipped = data_path("fixtures", "scenarios")
    bare = "/" not in text and not text.endswith((".yaml", ".yml"))
    if isinstance(name_or_path, str) and bare and not Path(text).exists():
        path = shipped / f"{text}.yaml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in shipped.glob("*.yaml")))
            raise UserError(
                f"no such scenario; shipped scenarios: {known}, or give a file path", where=text
            )
        return path
    return Path(name_or_path)


def load_scenario(path: str | Path) -> Scenario:
    """Read, check and resolve a scenario file (or a shipped scenario by name)."""
    p = find_scenario(path)
    doc = read_yaml(p)
    return scenario_from_dict(doc, where=str(p), base=p.parent)


def scenario_from_dict(
    doc: Any, *, where: str = "<scenario>", base: Path | None = None
) -> Scenario:
    """Check a parsed scenario document and resolve its parameters.

    ``base``: directory that a relative ``profile`` path is taken from (besides the
    current directory).
    """
    if not isinstance(doc, Mapping):
        raise UserError("a scenario must be a mapping with at least a 'load' key", where=where)
    for key in doc:
        if key not in KEYS:
            raise UserError(f"unknown key; allowed: {', '.join(KEYS)}", where=where, key=str(key))
    if "load" not in doc:
        raise UserError("missing; give a list of {for: DURATION, concurrency: X} segments",
                        where=where, key="load")

    params, sources = _resolve(doc, where=where, base=base)
    segments = _segments(doc["load"], where=where)
    metric = "rps" if params.metric == "rps" else "concurrency"
    for i, seg in enumerate(segments):
        if getattr(seg, metric) is None:
            raise UserError(f"no {metric!r} value, but the revision scales on {metric}",
                            where=where, key=f"load[{i}]")
    until = _duration(doc, "until", where=where, minimum=0.0)
    total = sum(s.duration for s in segments)
    if max(total, until or 0.0) > MAX_SECONDS:
        raise UserError(f"scenario longer than {MAX_SECONDS} s", where=where, key="until")
    history = doc.get("history")
    if history is not None:
        history = _number(history, where=where, key="history")
    return Scenario(
        params=params,
        segments=tuple(segments),
        load=tuple(per_second(segments, metric)),
        initial_ready=_int(doc, "initial_ready", default=1, where=where),
        fresh=_bool(doc, "fresh", where=where),
        hold_ready=_bool(doc, "hold_ready", where=where),
        reachable=_bool(doc, "reachable", where=where, default=True),
        pod_startup=_duration(doc, "pod_startup", where=where, minimum=0.0) or 0.0,
        history=history,
        until=until,
        sources=sources,
        where=where,
        name=str(doc.get("name") or ""),
    )


def per_second(segments: list[Segment] | tuple[Segment, ...], metric: str) -> list[float]:
    """Per-second averages ``load[k]`` over ``[k, k+1)`` of the segments' ``metric`` values.

    Segment edges inside a second are time-weighted: 0.5 s at 4 then 0.5 s at 0 gives 2.
    """
    total = sum(s.duration for s in segments)
    n = math.ceil(total - 1e-9)
    out = [0.0] * n
    start = 0.0
    for seg in segments:
        value = getattr(seg, metric) or 0.0
        end = start + seg.duration
        if value:
            k = int(math.floor(start))
            while k < end and k < n:
                lo = max(start, float(k))
                hi = min(end, float(k + 1))
                out[k] += value * (hi - lo)
                k += 1
        start = end
    return out


# --- parameters ----------------------------------------------------------------


def _resolve(doc: Mapping[str, Any], *, where: str, base: Path | None) -> tuple[KPAParams, dict]:
    config = _mapping(doc, "config", where=where)
    annotations = _mapping(doc, "annotations", where=where)
    cc = doc.get("container_concurrency")
    if cc is not None and (isinstance(cc, bool) or not isinstance(cc, int) or cc < 0):
        raise UserError(f"{cc!r} is not allowed; allowed: an integer >= 0",
                        where=where, key="container_concurrency")
    try:
        prof = None
        if doc.get("profile") is not None:
            ref = str(doc["profile"])
            if base is not None and ("/" in ref or ref.endswith((".yaml", ".yml"))):
                candidate = base / ref
                if candidate.is_file() and not Path(ref).is_file():
                    ref = str(candidate)
            prof = load_profile(ref)
        if prof is not None:
            configmap = {**prof.config, **config} if config is not None else None
            if annotations is not None:
                merged = {**prof.annotations, **annotations}
                isvc = prof.isvc_manifest() if prof.inferenceservice else None
                resolved = resolve(profile=prof, configmap=configmap, annotations=merged,
                                   isvc=isvc, container_concurrency=cc)
            else:
                resolved = resolve(profile=prof, configmap=configmap, container_concurrency=cc)
        else:
            resolved = resolve(configmap=config or {}, annotations=annotations,
                               container_concurrency=cc)
    except UserError as exc:
        if exc.where is None:
            raise UserError(exc.reason, where=where, key=exc.key) from None
        raise
    return resolved.params, dict(resolved.sources)


# --- field checks ----------------------------------------------------------------


def _mapping(doc: Mapping[str, Any], key: str, *, where: str) -> dict[str, Any] | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise UserError("expected a mapping of keys to values", where=where, key=key)
    return {str(k): v for k, v in value.items()}


def _number(value: Any, *, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UserError(f"{value!r} is not a number", where=where, key=key)
    if value < 0:
        raise UserError(f"{value!r} is not allowed; allowed: a number >= 0", where=where, key=key)
    return float(value)


def _int(doc: Mapping[str, Any], key: str, *, default: int, where: str) -> int:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(f"{value!r} is not allowed; allowed: an integer >= 0", where=where, key=key)
    return value


def _bool(doc: Mapping[str, Any], key: str, *, where: str, default: bool = False) -> bool:
    value = doc.get(key, default)
    if not isinstance(value, bool):
        raise UserError(f"{value!r} is not allowed; allowed: true or false", where=where, key=key)
    return value


def _seconds(value: Any, *, where: str, key: str) -> float:
    if isinstance(value, bool):
        raise UserError(f"{value!r} is not a duration (e.g. '90s')", where=where, key=key)
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        try:
            seconds = parse_duration(str(value))
        except DurationError as exc:
            raise UserError(str(exc), where=where, key=key) from None
    if not math.isfinite(seconds):
        raise UserError(f"{value!r} is not a finite duration", where=where, key=key)
    return seconds


def _duration(doc: Mapping[str, Any], key: str, *, where: str, minimum: float) -> float | None:
    if doc.get(key) is None:
        return None
    seconds = _seconds(doc[key], where=where, key=key)
    if seconds < minimum:
        raise UserError(f"{doc[key]!r} is negative", where=where, key=key)
    return seconds


def _segments(raw: Any, *, where: str) -> list[Segment]:
    if not isinstance(raw, list) or not raw:
        raise UserError("expected a non-empty list of {for: DURATION, concurrency: X} segments",
                        where=where, key="load")
    out: list[Segment] = []
    for i, item in enumerate(raw):
        label = f"load[{i}]"
        if not isinstance(item, Mapping):
            raise UserError("expected a mapping like {for: 30s, concurrency: 5}",
                            where=where, key=label)
        for k in item:
            if k not in SEGMENT_KEYS:
                raise UserError(f"unknown key; allowed: {', '.join(SEGMENT_KEYS)}",
                                where=where, key=f"{label}.{k}")
        if "for" not in item:
            raise UserError("missing; give the segment's duration, e.g. 30s",
                            where=where, key=f"{label}.for")
        duration = _seconds(item["for"], where=where, key=f"{label}.for")
        if duration <= 0:
            raise UserError(f"{item['for']!r} is not allowed; allowed: a duration > 0",
                            where=where, key=f"{label}.for")
        if "concurrency" not in item and "rps" not in item:
            raise UserError("give 'concurrency' or 'rps' (revision-wide total)",
                            where=where, key=label)
        values = {
            k: _number(item[k], where=where, key=f"{label}.{k}")
            for k in ("concurrency", "rps")
            if k in item
        }
        out.append(Segment(duration, values.get("concurrency"), values.get("rps")))
    return out
