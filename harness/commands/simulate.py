"""``harness simulate``: run a scenario file through the reference model of the KPA.

Prints one row per decider tick: a readable table by default, or with ``--json`` one
JSON object per line (keys of :data:`harness.kpa.COLUMNS`: ``t``, ``load``, ``ready``,
``replicas``, ``stable``, ``panic``, ``decider``, ``desired``, ``panic_mode``, ``ebc``,
``pa_state``, ``sks_mode``, ``valid``, ``poke``). ``--csv`` and ``--plot`` also write the
rows to a CSV file and a PNG of load, ready, desired and decider over time.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from harness.errors import UserError

TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (column, header, format)
    ("t", "t", "{:>7d}"),
    ("load", "load", "{:>9.3f}"),
    ("ready", "ready", "{:>6d}"),
    ("replicas", "repl", "{:>5d}"),
    ("stable", "stable", "{:>10.4f}"),
    ("panic", "panic", "{:>10.4f}"),
    ("decider", "decider", "{:>8d}"),
    ("desired", "desired", "{:>8d}"),
    ("panic_mode", "panicking", "{:>9}"),
    ("ebc", "ebc", "{:>7d}"),
    ("pa_state", "pa", "{:>10}"),
    ("sks_mode", "sks", "{:>6}"),
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario",
        required=True,
        metavar="FILE",
        help="scenario YAML file, or a shipped scenario by name (burst, scale-to-zero-1, ...)",
    )
    parser.add_argument("--engine", choices=("model", "upstream"), default="model",
                        help="model: the reference model (default); upstream: Knative "
                             "Serving's own autoscaler code, built with Go on first use")
    parser.add_argument("--json", action="store_true", help="one JSON object per tick and line")
    parser.add_argument("--csv", metavar="OUT", help="also write the rows to this CSV file")
    parser.add_argument("--plot", metavar="OUT.png", help="also plot load and pods to this PNG")
    parser.add_argument("-q", "--quiet", action="store_true", help="print no rows")


def run(args: argparse.Namespace) -> int:
    from harness.kpa.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    frame = scenario.run(args.engine)
    if not args.quiet:
        if args.json:
            write_json(frame, sys.stdout)
        else:
            write_table(frame, sys.stdout)
    if args.csv:
        _writable(args.csv)
        frame.to_csv(args.csv, index=False)
    if args.plot:
        _writable(args.plot)
        plot(frame, args.plot, title=scenario.name or Path(args.scenario).stem)
    return 0


def rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain Python values (ints, floats, bools, strings)."""
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in rec.items()}
        for rec in frame.to_dict(orient="records")
    ]


def write_json(frame: pd.DataFrame, out: TextIO) -> None:
    for rec in rows(frame):
        out.write(json.dumps(rec) + "\n")


def write_table(frame: pd.DataFrame, out: TextIO) -> None:
    header = " ".join(
        f"{{:>{len(fmt.format(_sample(col)))}}}".format(name) for col, name, fmt in TABLE_COLUMNS
    )
    out.write(header + "\n")
    for rec in rows(frame):
        out.write(" ".join(fmt.format(_cell(rec[col])) for col, _name, fmt in TABLE_COLUMNS) + "\n")


def _cell(value: Any) -> Any:
    return ("yes" if value else "no") if isinstance(value, bool) else value


def _sample(col: str) -> Any:
    if col in ("panic_mode", "pa_state", "sks_mode"):
        return "x"
    if col in ("load", "stable", "panic"):
        return 0.0
    return 0


def plot(frame: pd.DataFrame, path: str, *, title: str = "") -> None:
    """PNG of load (left axis) and ready / desired / decider pods (right axis) over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax_load = plt.subplots(figsize=(10, 4.5))
    ax_pods = ax_load.twinx()
    ax_load.fill_between(frame["t"], frame["load"], step="post", alpha=0.25, color="tab:gray",
                         label="load")
    ax_load.set_xlabel("time (s)")
    ax_load.set_ylabel("revision-wide load")
    ax_pods.step(frame["t"], frame["ready"], where="post", label="ready", color="tab:green")
    ax_pods.step(frame["t"], frame["desired"], where="post", label="desired (PA)",
                 color="tab:blue", linestyle="--")
    ax_pods.step(frame["t"], frame["decider"], where="post", label="decider",
                 color="tab:orange", linestyle=":")
    ax_pods.set_ylabel("pods")
    pods = frame[["ready", "desired", "decider"]].max().max()
    top = max(1.0, float(frame["load"].max()), float(pods))
    for ax in (ax_load, ax_pods):
        ax.set_ylim(0, top * 1.08)  # one scale on both axes, so the lines compare
    handles = ax_load.get_legend_handles_labels()[0] + ax_pods.get_legend_handles_labels()[0]
    labels = ax_load.get_legend_handles_labels()[1] + ax_pods.get_legend_handles_labels()[1]
    ax_pods.legend(handles, labels, loc="upper right")
    if title:
        ax_load.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _writable(path: str) -> None:
    parent = Path(path).parent
    if not parent.is_dir():
        raise UserError("directory does not exist", where=str(parent))
