"""Idle CPU of a running upstream cluster (``harness cluster up --upstream``), over a window.

Sums user+system CPU time (``/proc/<pid>/stat``) of every process of the run (found by
``HARNESS_UPSTREAM_RUN`` in their environment) plus the ``harness`` process that owns them
(the node agent runs in it), before and after ``--seconds`` (default 60), and prints each
component's share and the total as a fraction of one core and of the machine.

    python benchmarks/upstream_idle_cpu.py [--state-dir DIR] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from harness.commands.cluster import default_state_dir
from harness.upstream.sweep import run_processes

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def name(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    state_file = (args.state_dir or default_state_dir()) / "state.json"
    try:
        state = json.loads(state_file.read_text())
        run = state["run_id"]
    except (OSError, ValueError, KeyError):
        print(f"no upstream cluster recorded in {state_file}; start one with "
              "'harness cluster up --upstream'", file=sys.stderr)
        return 2
    pids = {pid: name(pid) for pid, (r, _) in run_processes().items() if r == run}
    pids[int(state["pid"])] = "harness (node agent)"
    before = {pid: cpu_seconds(pid) for pid in pids}
    time.sleep(args.seconds)
    used = {pids[pid]: cpu_seconds(pid) - t for pid, t in before.items()}
    total = sum(used.values())
    for comp, secs in sorted(used.items(), key=lambda kv: -kv[1]):
        print(f"{comp:28s} {secs / args.seconds:6.3f} core")
    cores = os.cpu_count() or 1
    print(f"{'total':28s} {total / args.seconds:6.3f} core = "
          f"{100 * total / args.seconds / cores:.1f} % of {cores} cores over {args.seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
