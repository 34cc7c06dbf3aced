"""Load profiles: YAML files of segments, checked against a JSON Schema, as frozen dataclasses.

A profile is a list of segments played in order. A segment is closed loop
(``concurrency``: users, each with one request in flight), open loop (``rate``: arrivals
per second, on a schedule that slow responses do not delay) or ``idle`` (no traffic).
Its ``shape`` says how the level moves over the segment (see :mod:`harness.load.shapes`).
The schema is ``fixtures/schemas/loadprofile.schema.json``; this module adds the checks a
schema cannot express and turns every problem into one :class:`~harness.errors.UserError`
naming the file and the field (``segments[2].rate.peak``).

This module is imported inside the Locust child process too: it stays free of pandas.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from harness.durations import GO_DURATION_FORMAT, DurationError, parse_duration
from harness.errors import UserError
from harness.files import check_schema, read_yaml
from harness.files import load_schema as load_json_schema

SHAPES = ("constant", "idle", "step", "ramp", "spike", "burst", "sine", "trace")
MODES = ("concurrency", "rate", "idle")
DEFAULT_INSTANCES: tuple[tuple[float, ...], ...] = ((1.0, 2.0, 3.0, 4.0),)
DEFAULT_MAX_IN_FLIGHT = 1000
DEFAULT_TIMEOUT = 30.0
DEFAULT_SPAWN_RATE = 1000.0


@dataclass(frozen=True)
class LoadSegment:
    """One part of a profile; times in seconds from the segment's start.

    ``params`` holds the shape's numbers (durations already in seconds); for ``trace`` it
    holds ``values``, one level per second.
    """

    shape: str
    mode: str
    duration: float
    params: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class LoadProfile:
    """A validated load profile."""

    name: str
    segments: tuple[LoadSegment, ...]
    protocol: str = "v1"
    model: str = ""  # "" = the InferenceService's name (from the Host header)
    instances: tuple[tuple[float, ...], ...] = DEFAULT_INSTANCES
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    timeout: float = DEFAULT_TIMEOUT
    spawn_rate: float = DEFAULT_SPAWN_RATE
    description: str = ""
    source: str = ""

    @property
    def total(self) -> float:
        """Length of the whole profile in seconds."""
        return sum(s.duration for s in self.segments)

    @property
    def starts(self) -> tuple[float, ...]:
        """Start time of each segment, seconds from the profile's start."""
        out, t = [], 0.0
        for s in self.segments:
            out.append(t)
            t += s.duration
        return tuple(out)

    @property
    def modes(self) -> frozenset[str]:
        return frozenset(s.mode for s in self.segments)

    def to_json(self) -> dict[str, Any]:
        """Plain data (trace values inlined) that :func:`profile_from_json` reads back."""
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "protocol": self.protocol,
            "model": self.model,
            "instances": [list(r) for r in self.instances],
            "max_in_flight": self.max_in_flight,
            "timeout": self.timeout,
            "spawn_rate": self.spawn_rate,
            "segments": [
                {"shape": s.shape, "mode": s.mode, "duration": s.duration,
                 "params": {k: list(v) if isinstance(v, tuple) else v
                            for k, v in s.params.items()}, "note": s.note}
                for s in self.segments
            ],
        }


def profile_from_json(data: Mapping[str, Any]) -> LoadProfile:
    """Inverse of :meth:`LoadProfile.to_json` (no validation: the data came from a LoadProfile)."""
    return LoadProfile(
        name=data["name"],
        description=data.get("description", ""),
        source=data.get("source", ""),
        protocol=data["protocol"],
        model=data["model"],
        instances=tuple(tuple(float(x) for x in r) for r in data["instances"]),
        max_in_flight=int(data["max_in_flight"]),
        timeout=float(data["timeout"]),
        spawn_rate=float(data["spawn_rate"]),
        segments=tuple(
            LoadSegment(
                shape=s["shape"], mode=s["mode"], duration=float(s["duration"]),
                params={k: tuple(v) if isinstance(v, list) else v for k, v in s["params"].items()},
                note=s.get("note", ""),
            )
            for s in data["segments"]
        ),
    )


def load_schema() -> dict[str, Any]:
    return load_json_schema("loadprofile.schema.json")


def read_load_profile(path: str | Path) -> LoadProfile:
    """Read, validate and resolve a profile file (YAML or JSON); UserError on any problem."""
    p = Path(path)
    where = str(path)
    doc = read_yaml(p, where=where)
    return parse_profile(doc, where=where, base_dir=p.parent, default_name=p.stem)


def parse_profile(
    doc: Any, *, where: str = "<profile>", base_dir: Path | None = None,
    default_name: str = "profile",
) -> LoadProfile:
    """Validate a profile document already parsed from YAML/JSON."""
    if not isinstance(doc, dict):
        raise UserError("a profile must be a mapping with a 'segments' list", where=where)
    _check_schema(doc, where)
    request = doc.get("request", {})
    limits = doc.get("limits", {})
    instances = tuple(tuple(float(x) for x in row) for row in request.get("instances", []))
    if instances and len({len(r) for r in instances}) != 1:
        raise UserError("all instances must have the same length", where=where,
                        key="request.instances")
    timeout = DEFAULT_TIMEOUT
    if "timeout" in limits:
        timeout = _duration(limits["timeout"], where, "limits.timeout")
    segments = tuple(
        _segment(raw, i, where, base_dir or Path.cwd()) for i, raw in enumerate(doc["segments"])
    )
    return LoadProfile(
        name=str(doc.get("name") or default_name),
        description=str(doc.get("description", "")).strip(),
        source=where,
        protocol=request.get("protocol", "v1"),
        model=request.get("model", ""),
        instances=instances or DEFAULT_INSTANCES,
        max_in_flight=int(limits.get("max_in_flight", DEFAULT_MAX_IN_FLIGHT)),
        timeout=timeout,
        spawn_rate=float(limits.get("spawn_rate", DEFAULT_SPAWN_RATE)),
        segments=segments,
    )


def _duration(value: Any, where: str, key: str) -> float:
    try:
        seconds = parse_duration(value)
    except DurationError:
        raise UserError(f"{value!r} is not a Go duration (e.g. '30s', '1m30s')",
                        where=where, key=key) from None
    if seconds <= 0:
        raise UserError(f"{value!r} must be a positive duration", where=where, key=key)
    return seconds


def _segment(raw: Mapping[str, Any], i: int, where: str, base_dir: Path) -> LoadSegment:
    key = f"segments[{i}]"
    shape = raw["shape"]
    mode = "idle" if shape == "idle" else ("concurrency" if "concurrency" in raw else "rate")
    spec = raw.get(mode)
    lkey = f"{key}.{mode}"
    params: dict[str, Any] = {}
    duration = _duration(raw["duration"], where, f"{key}.duration") if "duration" in raw else 0.0
    if shape == "constant":
        params["value"] = float(spec)
    elif shape == "ramp":
        params["from"], params["to"] = float(spec["from"]), float(spec["to"])
    elif shape == "step":
        params["levels"] = tuple(float(v) for v in spec["levels"])
    elif shape == "spike":
        params.update(base=float(spec["base"]), peak=float(spec["peak"]),
                      at=_duration(spec["at"], where, f"{lkey}.at"),
                      width=_duration(spec["width"], where, f"{lkey}.width"))
        if params["at"] + params["width"] > duration + 1e-9:
            raise UserError(f"the spike ends at {params['at'] + params['width']:g}s, after the "
                            f"segment's {duration:g}s", where=where, key=f"{lkey}.width")
    elif shape == "burst":
        params.update(baseline=float(spec["baseline"]), capacity=float(spec["capacity"]),
                      multiple=float(spec["multiple"]),
                      at=_duration(spec["at"], where, f"{lkey}.at"))
        if params["at"] >= duration:
            raise UserError(f"the burst starts at {params['at']:g}s, not inside the segment's "
                            f"{duration:g}s", where=where, key=f"{lkey}.at")
    elif shape == "sine":
        params.update(mean=float(spec["mean"]), amplitude=float(spec["amplitude"]),
                      period=_duration(spec["period"], where, f"{lkey}.period"),
                      phase=float(spec.get("phase", 0.0)))
        if params["amplitude"] > params["mean"]:
            raise UserError("amplitude must not exceed mean (the level would go below 0)",
                            where=where, key=f"{lkey}.amplitude")
    elif shape == "trace":
        values = _read_trace(base_dir / spec["file"], float(spec.get("scale", 1.0)),
                             where, f"{lkey}.file")
        if not duration:
            duration = float(len(values))
        elif duration > len(values):
            raise UserError(f"duration {duration:g}s is longer than the trace's {len(values)}s",
                            where=where, key=f"{key}.duration")
        params["values"] = values
    if mode == "concurrency":
        _check_whole_users(shape, params, where, lkey)
    return LoadSegment(shape=shape, mode=mode, duration=duration, params=params,
                   note=str(raw.get("note", "")))


def _check_whole_users(shape: str, params: Mapping[str, Any], where: str, key: str) -> None:
    """Concurrency levels that are stated as numbers must be whole users."""
    named = {"constant": ("value",), "ramp": ("from", "to"), "spike": ("base", "peak"),
             "burst": ("baseline",)}.get(shape, ())
    for name in named:
        v = params[name]
        if not float(v).is_integer():
            field_key = key if shape == "constant" else f"{key}.{name}"
            raise UserError(f"{v:g} is not a whole number of users", where=where, key=field_key)
    if shape == "step":
        for j, v in enumerate(params["levels"]):
            if not float(v).is_integer():
                raise UserError(f"{v:g} is not a whole number of users", where=where,
                                key=f"{key}.levels[{j}]")


def _read_trace(path: Path, scale: float, where: str, key: str) -> tuple[float, ...]:
    """Per-second values from a CSV with a header ``second,value``; gaps hold the last value."""
    try:
        with path.open(newline="") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise UserError(f"cannot read trace {str(path)!r}: {exc.strerror or exc}",
                        where=where, key=key) from None
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    if not rows or [c.strip() for c in rows[0]][:2] != ["second", "value"]:
        raise UserError(f"trace {str(path)!r} must start with the header 'second,value'",
                        where=where, key=key)
    points: list[tuple[int, float]] = []
    for n, row in enumerate(rows[1:], start=2):
        try:
            sec, val = int(row[0]), float(row[1])
        except (ValueError, IndexError):
            raise UserError(f"trace {str(path)!r} line {n}: expected 'second,value' numbers",
                            where=where, key=key) from None
        if val < 0 or not math.isfinite(val):
            raise UserError(f"trace {str(path)!r} line {n}: value must be >= 0",
                            where=where, key=key)
        if (points and sec <= points[-1][0]) or (not points and sec != 0):
            raise UserError(f"trace {str(path)!r} line {n}: seconds must start at 0 and "
                            "increase", where=where, key=key)
        points.append((sec, val))
    if not points:
        raise UserError(f"trace {str(path)!r} has no rows", where=where, key=key)
    values: list[float] = []
    for (sec, val), nxt in zip(points, points[1:] + [(points[-1][0] + 1, 0.0)], strict=True):
        values.extend([val * scale] * (nxt[0] - sec))
    return tuple(values)


# --- schema errors as one line ---------------------------------------------------------------


def _check_schema(doc: Mapping[str, Any], where: str) -> None:
    check_schema(doc, load_schema(), where=where, pick=_pick, explain=_explain, brackets=True)


def _pick(errors: list[jsonschema.ValidationError]) -> jsonschema.ValidationError:
    """An unknown shape makes every shape-specific rule moot: report it first."""
    for err in errors:
        if list(err.absolute_path)[-1:] == ["shape"]:
            return err
    return jsonschema.exceptions.best_match(errors)


def _explain(err: jsonschema.ValidationError) -> tuple[str, list[Any]] | None:
    """This schema's own words: shapes and other choices, the loop modes, durations."""
    path = list(err.absolute_path)
    inst = err.instance
    v = err.validator
    if err.schema.get("format") == GO_DURATION_FORMAT and v in ("pattern", "type"):
        return f"{inst!r} is not a Go duration (e.g. '30s', '1m30s')", path
    if v == "enum":
        what = "shape" if path and path[-1] == "shape" else "value"
        return f"unknown {what} {inst!r}; one of: {', '.join(map(str, err.validator_value))}", path
    if v == "oneOf":
        return "needs exactly one of 'concurrency' (closed loop) or 'rate' (open loop)", path
    if v == "not" and isinstance(inst, Mapping):
        return "an idle segment has neither 'concurrency' nor 'rate'", path
    return None
