"""The run bundle ``reports/<run-id>/``: raw data in, page out.

:func:`write_report` writes the raw data of every case (timelines as CSV, request
records, the reference band, optionally the recorded events as JSON lines) and
``summary.json`` (the verdicts), then calls :func:`build_report`, which rebuilds
``index.html`` and the plots from those files alone and packs everything into
``<run-id>.tar.gz`` inside the directory. ``harness report DIR`` runs
:func:`build_report` again.

Layout::

    index.html  summary.json  <run-id>.tar.gz
    plots/<case>--<check>.png
    cases/<case>/{pods,ready,scale,panic,scheduling,band,records}.csv  [events.jsonl]
"""

from __future__ import annotations

import json
import math
import re
import tarfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.checks.verdict import FAILING, STATUSES, Verdict
from harness.errors import UserError
from harness.observe.frames import (
    PANIC_COLUMNS,
    READY_COLUMNS,
    SCALE_COLUMNS,
    Frames,
    empty,
)
from harness.params import KPAParams

SUMMARY = "summary.json"
TIMELINES = ("pods", "ready", "scale", "panic", "scheduling")


@dataclass
class Case:
    """One test's timeline, requests and verdicts (one namespace, one service)."""

    name: str
    frames: Frames
    verdicts: Sequence[Verdict]
    records: pd.DataFrame | None = None
    band: pd.DataFrame | None = None
    params: KPAParams | None = None
    events: Sequence[Mapping[str, Any]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "case"


def write_report(
    run_dir: str | Path,
    cases: Sequence[Case],
    *,
    run_id: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write the raw data and ``summary.json`` of a run, then build the page."""
    root = Path(run_dir)
    run_id = run_id or root.name
    root.mkdir(parents=True, exist_ok=True)
    verdicts: list[dict[str, Any]] = []
    case_info: dict[str, Any] = {}
    for case in cases:
        name = slug(case.name)
        cdir = root / "cases" / name
        cdir.mkdir(parents=True, exist_ok=True)
        for key, df in case.frames.frames().items():
            df.to_csv(cdir / f"{key}.csv", index=False)
        if case.records is not None:
            case.records.to_csv(cdir / "records.csv", index=False)
        band = case.band
        if band is None and case.params is not None:
            from harness.checks.band import reference_band

            band = reference_band(case.frames, case.params, case.records)
        if band is not None:
            band.to_csv(cdir / "band.csv", index=False)
        if case.events is not None:
            with (cdir / "events.jsonl").open("w") as fh:
                for ev in case.events:
                    fh.write(json.dumps(ev, default=str) + "\n")
        case_info[name] = {
            "start": _finite(case.frames.start),
            "end": _finite(case.frames.end),
            "metric": case.params.metric if case.params is not None else "concurrency",
            **case.meta,
        }
        for v in case.verdicts:
            verdicts.append({"case": name, **v.as_dict()})
    counts = {s: sum(1 for v in verdicts if v["status"] == s) for s in STATUSES}
    summary = {
        "run_id": run_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "meta": dict(meta or {}),
        "counts": counts,
        "passed": not any(counts[s] for s in FAILING),
        "cases": case_info,
        "verdicts": verdicts,
    }
    (root / SUMMARY).write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
    return build_report(root)


def _finite(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def read_summary(root: Path) -> dict[str, Any]:
    path = root / SUMMARY
    if not root.is_dir():
        raise UserError("not a directory", where=str(root))
    try:
        summary = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"not a run report: no {SUMMARY}", where=str(root)) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{SUMMARY} is not readable JSON: {exc}", where=str(root)) from None
    if not isinstance(summary, dict) or not isinstance(summary.get("verdicts"), list):
        raise UserError(f"{SUMMARY} has no list of verdicts", where=str(root))
    return summary


def _read_csv(path: Path, columns: Sequence[str] | None = None) -> pd.DataFrame | None:
    if not path.is_file():
        return None if columns is None else empty(columns)
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return None if columns is None else empty(columns)
    return df


def build_report(run_dir: str | Path, *, archive: bool = True) -> Path:
    """Rebuild ``index.html`` and the plots from the raw data; return the page's path."""
    from harness.report.html import render
    from harness.report.plots import plot_timeline

    root = Path(run_dir)
    summary = read_summary(root)
    info = summary.get("cases") or {}
    loaded: dict[str, dict[str, Any]] = {}
    for v in summary["verdicts"]:
        case = slug(str(v.get("case") or "case"))
        if case not in loaded:
            cdir = root / "cases" / case
            loaded[case] = {
                "ready": _read_csv(cdir / "ready.csv", READY_COLUMNS),
                "scale": _read_csv(cdir / "scale.csv", SCALE_COLUMNS),
                "panic": _read_csv(cdir / "panic.csv", PANIC_COLUMNS),
                "records": _read_csv(cdir / "records.csv"),
                "band": _read_csv(cdir / "band.csv"),
            }
        data = loaded[case]
        t0, end = _span(info.get(case) or {}, data)
        png = Path("plots") / f"{case}--{slug(str(v.get('check')))}.png"
        plot_timeline(
            root / png,
            title=f"{str(v.get('status')).upper()}: {v.get('check')} ({case})",
            ready=data["ready"], scale=data["scale"], panic=data["panic"],
            records=data["records"], band=data["band"], t0=t0, end=end,
            window=v.get("window"),
            metric="rps" if (info.get(case) or {}).get("metric") == "rps" else "concurrency",
        )
        v["plot"] = png.as_posix()
        for row in v.get("evidence") or []:  # seconds into the plot, for people
            if isinstance(row.get("time"), int | float):
                row["t (s)"] = round(float(row["time"]) - t0, 2)
    tar_name = f"{slug(str(summary.get('run_id') or root.name))}.tar.gz"
    files = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.suffix in (".csv", ".json", ".jsonl")
    )
    if archive:
        files.append(tar_name)
    page = root / "index.html"
    page.write_text(render(summary, files))
    if archive:
        tmp = root / (tar_name + ".part")
        with tarfile.open(tmp, "w:gz") as tar:
            for p in sorted(root.rglob("*")):
                if p.is_file() and p.name not in (tar_name, tmp.name):
                    tar.add(p, arcname=f"{root.name}/{p.relative_to(root).as_posix()}")
        tmp.replace(root / tar_name)
    return page


def _span(info: Mapping[str, Any], data: Mapping[str, pd.DataFrame | None]) -> tuple[float, float]:
    starts, ends = [], []
    if info.get("start") is not None:
        starts.append(float(info["start"]))
    if info.get("end") is not None:
        ends.append(float(info["end"]))
    for key in ("ready", "scale", "band"):
        df = data.get(key)
        if df is not None and not df.empty and "time" in df:
            starts.append(float(df["time"].min()))
            ends.append(float(df["time"].max()))
    rec = data.get("records")
    if rec is not None and not rec.empty:
        starts.append(float(rec["start"].min()))
        ends.append(float((rec["start"] + rec["latency_s"].fillna(0.0)).max()))
    t0 = math.floor(min(starts)) if starts else 0.0
    return float(t0), max(ends) if ends else t0 + 1.0
