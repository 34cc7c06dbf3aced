"""``harness conformance``: the conformance job (``make conformance``).

What runs today, honestly labelled: the emulated cluster and the pytest suites that
check a live cluster are not built yet, so this job checks what can be checked without
one. For the chosen profile it resolves the effective knobs, lists the documentation
findings (documented claims that cannot hold on Knative), runs the reference model
through the documented scenarios (:mod:`harness.predictions`), and writes
``reports/<run-id>/summary.json``. It ends by saying that no cluster was tested. It
exits 1 when a documentation finding of severity ``error`` exists, so a nightly job
shows the documentation as not conforming, and 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.durations import format_duration
from harness.errors import UserError
from harness.params import resolve
from harness.predictions import predict


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="fast", metavar="NAME|FILE", help="default: fast")
    parser.add_argument(
        "--cluster",
        default="local",
        choices=["local", "kind", "current"],
        help="where to run the suites (none are built yet: see the output)",
    )
    parser.add_argument("--report-dir", default="reports", metavar="DIR")
    parser.add_argument("--run-id", default=None, help="default: a new one")


def run(args: argparse.Namespace) -> int:
    resolved = resolve(profile=args.profile)
    run_id = args.run_id or time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    out = Path(args.report_dir) / run_id
    try:
        out.mkdir(parents=True, exist_ok=False)
    except OSError as exc:
        raise UserError(
            f"cannot create the report folder: {exc.strerror}", where=str(out)
        ) from None

    console = Console()
    p = resolved.params
    name = resolved.profile.name if resolved.profile else str(args.profile)
    console.print(f"[bold]harness conformance[/] profile [cyan]{name}[/], run id {run_id}")
    console.print(
        f"stable window {format_duration(p.stable_window)}, panic window "
        f"{format_duration(p.panic_window)} at {p.panic_threshold_percentage:g} %, target "
        f"{p.target_per_pod:g} per pod, rates up {p.max_scale_up_rate:g} / down "
        f"{p.max_scale_down_rate:g}, scale-down delay {format_duration(p.scale_down_delay)}, "
        f"retention {format_duration(p.scale_to_zero_pod_retention_period)}"
    )

    predictions = predict(p)
    table = Table(title="Reference model predictions (pods start instantly)")
    for col in ("scenario", "measure", "predicted", "detail"):
        table.add_column(col)
    for pr in predictions:
        shown = "never" if pr.value is None else f"{pr.value:g} s"
        if pr.measure.startswith("largest step"):
            shown = "-" if pr.value is None else f"{pr.value:g}"
        table.add_row(pr.scenario, pr.measure, shown, pr.detail)
    console.print(table)

    errors = [f for f in resolved.findings if f.severity == "error"]
    console.print(f"Documentation findings: {len(resolved.findings)} ({len(errors)} errors)")
    for f in resolved.findings:
        console.print(f"  [{f.severity}] {f.id}: {f.arithmetic}", markup=False)

    summary = {
        "run_id": run_id,
        "profile": name,
        "cluster": None,
        "cluster_tested": False,
        "params": asdict(p),
        "sources": resolved.sources,
        "findings": [f.as_dict() for f in resolved.findings],
        "predictions": [pr.as_dict() for pr in predictions],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    console.print(f"Report: {out / 'summary.json'}")
    console.print(
        "[bold yellow]No cluster was tested.[/] The emulated cluster and the conformance "
        f"suites (--cluster {args.cluster}) are not built yet; this run checked the "
        "documentation against Knative and the reference model only."
    )
    return 1 if errors else 0
