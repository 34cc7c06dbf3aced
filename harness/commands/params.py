"""``harness params``: the effective value of every autoscaler knob, and where it came from.

Prints one table (knob, value, source, exact key), the documented-vs-configured
differences when a ConfigMap or InferenceService is given beside the profile, and the
documentation findings. ``--json`` prints the same as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, fields
from typing import Any

from harness.durations import format_duration
from harness.params import KPAParams
from harness.resolve import Resolved, resolve

DURATION_FIELDS = frozenset(
    {
        "stable_window",
        "scale_to_zero_grace_period",
        "scale_to_zero_pod_retention_period",
        "scale_down_delay",
    }
)
FRACTION_FIELDS = frozenset(
    {"container_concurrency_target_percentage", "target_utilization_percentage"}
)
DERIVED = ("panic_window", "panic_threshold", "utilization", "total_per_pod", "target_per_pod")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        required=True,
        metavar="NAME|FILE",
        help="coreweave, knative-defaults, fast, or a profile YAML file",
    )
    parser.add_argument(
        "--configmap",
        metavar="FILE",
        help="config-autoscaler ConfigMap (manifest or data) as configured",
    )
    parser.add_argument("--isvc", metavar="FILE", help="InferenceService manifest as deployed")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    resolved = resolve(profile=args.profile, configmap=args.configmap, isvc=args.isvc)
    if args.json:
        json.dump(to_json(resolved), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_report(resolved)
    return 0


def show(name: str, value: Any) -> str:
    """A knob's value as a person reads it: durations Go style, fractions as percent."""
    if value is None:
        return "-"
    if name in DURATION_FIELDS or name == "panic_window":
        return format_duration(value)
    if name in FRACTION_FIELDS:
        return f"{value:.4g} ({value * 100:g}%)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def to_json(r: Resolved) -> dict[str, Any]:
    """Everything :func:`print_report` shows, in internal units (seconds, fractions)."""
    return {
        "profile": r.profile.name if r.profile else None,
        "params": {
            f.name: {
                "value": getattr(r.params, f.name),
                "source": r.sources[f.name],
                "key": r.keys[f.name],
            }
            for f in fields(KPAParams)
        },
        "derived": {name: getattr(r.params, name) for name in DERIVED},
        "differences": [asdict(d) for d in r.differences],
        "ignored_keys": list(r.ignored_keys),
        "findings": [f.as_dict() for f in r.findings],
    }


def print_report(r: Resolved) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 120), soft_wrap=False)
    title = "Effective KPA knobs"
    if r.profile:
        title += f" (profile {r.profile.name}: {r.profile.path})"
    table = Table(title=title, title_justify="left")
    for col in ("knob", "value", "source", "key"):
        table.add_column(col, overflow="fold")
    for f in fields(KPAParams):
        value = getattr(r.params, f.name)
        table.add_row(f.name, show(f.name, value), r.sources[f.name], r.keys[f.name])
    for name in DERIVED:
        table.add_row(name, show(name, getattr(r.params, name)), "derived", "")
    console.print(table)

    if r.differences:
        diff = Table(title="Documented vs configured", title_justify="left")
        for col in ("knob", "documented", "configured", "configured source"):
            diff.add_column(col, overflow="fold")
        for d in r.differences:
            diff.add_row(
                d.field,
                show(d.field, d.documented),
                show(d.field, d.configured),
                d.configured_source,
            )
        console.print(diff)
    elif r.documented is not None and r.documented is not r.params:
        console.print("Documented vs configured: no differences")
    if r.ignored_keys:
        console.print(f"Ignored by Knative: {', '.join(r.ignored_keys)}", markup=False)

    console.print(f"Findings ({len(r.findings)}):")
    for f in r.findings:
        console.print(f"[{f.severity}] {f.id} ({f.side}): {f.claim}", markup=False)
        console.print(f"    Knative: {f.knative}", markup=False)
        console.print(f"    Arithmetic: {f.arithmetic}", markup=False)
