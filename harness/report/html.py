"""The ``index.html`` of a run: a summary table, then one section per check, failures
first, each with its numbers, why, window, budget, plot and evidence. Plain
``string.Template`` with every value escaped."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from string import Template
from typing import Any

from harness.checks.verdict import STATUSES

PAGE = Template("""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>$title</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1100px;color:#111;
padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin:1.6em 0 .3em}
table{border-collapse:collapse;margin:.4em 0;font-size:.9em} td,th{border:1px solid #ccc;
padding:.25em .5em;text-align:left;vertical-align:top} th{background:#f2f2f2}
.fail{background:#b00020;color:#fff} .pass{background:#1b7f3b;color:#fff}
.skip{background:#777;color:#fff} .inconclusive{background:#c77c02;color:#fff}
.badge{padding:.1em .5em;border-radius:3px;font-weight:bold}
.why{color:#b00020;font-weight:bold;font-size:1.05em} .key{color:#555;font-family:monospace}
img{max-width:100%;border:1px solid #ddd} section{border-top:2px solid #ddd}
.counts span{margin-right:1em}
details{margin:.3em 0} summary{cursor:pointer;color:#333} pre{font-size:.85em;overflow-x:auto}
</style></head><body>
<h1>$title</h1>
<p class="counts">$counts</p>
<p>$meta</p>
$meta_details
$timings
<table><tr><th>verdict</th><th>check</th><th>case</th><th>why / observed</th></tr>
$rows
</table>
$sections
<h2>Raw data</h2><ul>$files</ul>
</body></html>
""")

SECTION = Template("""<section id="$anchor">
<h2><span class="badge $status">$STATUS</span> $check <small>($case)</small></h2>
<p><b>Claim:</b> $claim <span class="key">[$claim_key]</span></p>
$why
<table><tr><th>expected</th><td>$expected</td></tr>
<tr><th>observed</th><td>$observed</td></tr>
<tr><th>window</th><td>$window</td></tr>
<tr><th>error budget</th><td>$budget</td></tr></table>
$numbers
$plot
$evidence
</section>
""")


def e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}".rstrip("0").rstrip(".") if abs(v) < 1e6 else f"{v:.0f}"
    return str(v)


def table(rows: Sequence[Mapping[str, Any]], limit: int = 30) -> str:
    if not rows:
        return ""
    cols: list[str] = []
    for r in rows[:limit]:
        cols.extend(c for c in r if c not in cols)
    head = "".join(f"<th>{e(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{e(_fmt(r.get(c, '')))}</td>" for c in cols) + "</tr>"
        for r in rows[:limit]
    )
    more = f"<p>{len(rows) - limit} more row(s) in summary.json</p>" if len(rows) > limit else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def order(verdicts: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Failures first, then inconclusive, passes, skips; stable within each."""
    rank = {s: i for i, s in enumerate(STATUSES)}
    return sorted(verdicts, key=lambda v: rank.get(str(v.get("status")), 9))


def window_text(w: Mapping[str, Any] | None) -> str:
    if not w:
        return "-"
    nb = "-" if w.get("not_before") is None else f"{float(w['not_before']):.1f} s"
    by = "-" if w.get("by") is None else f"{float(w['by']):.1f} s"
    return f"not before {nb}, by {by} after {w.get('anchor') or 'start'}"


def budget_text(b: Mapping[str, float] | None) -> str:
    if not b:
        return "-"
    parts = " + ".join(f"{float(v):g} s {k}" for k, v in b.items())
    return f"{parts} = {sum(float(v) for v in b.values()):g} s"


def meta_parts(meta: Mapping[str, Any]) -> tuple[str, str]:
    """Scalars as one line (``profile: fast · cluster: local``); each nested value (the
    effective parameters, the predictions) folded under its own ``<details>``: a table
    when it is a list of records, else indented JSON."""
    folded = {k for k, v in meta.items() if isinstance(v, Mapping | list) and v}
    inline = [f"{e(k)}: {e(v if not isinstance(v, Mapping | list) else 'none')}"
              for k, v in meta.items() if k not in folded]
    blocks = []
    for k, v in meta.items():
        if k in folded:
            blocks.append(f"<details><summary>{e(k)}</summary>{nested(v)}</details>")
    return " · ".join(inline), "\n".join(blocks)


def nested(value: Mapping[str, Any] | list[Any]) -> str:
    if isinstance(value, list) and value and all(isinstance(r, Mapping) for r in value):
        return table(value, 100)
    if isinstance(value, Mapping) and any(isinstance(v, Mapping | list) for v in value.values()):
        return "".join(
            f"<details><summary>{e(k)}</summary>{nested(v)}</details>"
            if isinstance(v, Mapping | list) else f"<p>{e(k)}: {e(_fmt(v))}</p>"
            for k, v in value.items()
        )
    if isinstance(value, Mapping):
        return table([{"name": k, "value": v} for k, v in value.items()], 100)
    return f"<pre>{e(json.dumps(value, indent=2, default=str))}</pre>"


def _dur(seconds: Any) -> str:
    from harness.durations import format_duration

    if seconds is None:
        return "-"
    return format_duration(max(0.0, round(float(seconds))))


def timings(cases: Mapping[str, Mapping[str, Any]]) -> str:
    """Each suite's time against its expected time (the plan's), longest expected first;
    over the expected time is marked."""
    rows = [(name, c) for name, c in cases.items() if c.get("took_s") is not None]
    if not rows:
        return ""
    rows.sort(key=lambda nc: -float(nc[1].get("expected_s") or 0))
    body = []
    for name, c in rows:
        took, exp = c.get("took_s"), c.get("expected_s")
        over = exp is not None and float(took) > float(exp)
        ratio = f"{float(took) / float(exp):.0%}" if exp else "-"
        mark = ' class="why"' if over else ""
        body.append(f"<tr><td>{e(name)}</td><td>{e(c.get('outcome', ''))}</td>"
                    f"<td>{e(_dur(took))}</td><td>{e(_dur(exp))}</td>"
                    f"<td{mark}>{e(ratio)}</td></tr>")
    return ("<table><tr><th>suite</th><th>outcome</th><th>took</th><th>expected</th>"
            "<th>took / expected</th></tr>" + "".join(body) + "</table>")


def render(summary: Mapping[str, Any], files: Sequence[str]) -> str:
    verdicts = order(summary.get("verdicts") or [])
    counts = {s: sum(1 for v in verdicts if v.get("status") == s) for s in STATUSES}
    rows, sections = [], []
    for i, v in enumerate(verdicts):
        status = str(v.get("status"))
        anchor = f"v{i}"
        rows.append(
            f'<tr><td><span class="badge {e(status)}">{e(status.upper())}</span></td>'
            f'<td><a href="#{anchor}">{e(v.get("check"))}</a></td><td>{e(v.get("case"))}</td>'
            f"<td>{e(v.get('why') or v.get('observed'))}</td></tr>"
        )
        numbers = [{"name": k, "value": val} for k, val in (v.get("numbers") or {}).items()]
        plot = v.get("plot")
        sections.append(SECTION.substitute(
            anchor=anchor, status=e(status), STATUS=e(status.upper()), check=e(v.get("check")),
            case=e(v.get("case")), claim=e(v.get("claim")), claim_key=e(v.get("claim_key")),
            why=f'<p class="why">{e(v.get("why"))}</p>' if v.get("why") else "",
            expected=e(v.get("expected")), observed=e(v.get("observed")),
            window=e(window_text(v.get("window"))), budget=e(budget_text(v.get("budget"))),
            numbers=table(numbers, 40),
            plot=f'<p><img src="{e(plot)}" alt="timeline of {e(v.get("check"))}"></p>'
            if plot else "",
            evidence=("<h3>Evidence</h3>" + table(v.get("evidence") or []))
            if v.get("evidence") else "",
        ))
    meta, meta_details = meta_parts(summary.get("meta") or {})
    return PAGE.substitute(
        timings=timings(summary.get("cases") or {}),
        title=e(f"Autoscaling conformance run {summary.get('run_id', '')}"),
        counts=" ".join(f'<span class="badge {s}">{counts[s]} {s.upper()}</span>'
                        for s in STATUSES),
        meta=meta,
        meta_details=meta_details,
        rows="\n".join(rows),
        sections="\n".join(sections),
        files="".join(f'<li><a href="{e(f)}">{e(f)}</a></li>' for f in files),
    )
