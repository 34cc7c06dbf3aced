"""Emulator vs upstream: two run bundles' trajectories side by side.

Give the report folders of two runs of the same suites and profile (say an emulator run,
``make conformance PROFILE=fast``, and an upstream one, ``make conformance
CLUSTER=upstream PROFILE=fast``); for every case both have (or those matching ``-k``),
prints desired pods, ready pods and panic once a second from the case's first request,
then the summary numbers (first scale-up, peaks, panic periods, first step down, time to
zero, the cold start's phases) with their difference.

    .venv/bin/python benchmarks/trajectories.py reports/<emulator-run> reports/<upstream-run> \\
        [-k panic -k scale_down -k cold_start] [--labels emulator upstream]
"""

from __future__ import annotations

import argparse
import sys

from harness.errors import UserError
from harness.report.trajectories import compare


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("a", help="the first run's report folder (e.g. the emulator's)")
    parser.add_argument("b", help="the second run's report folder (e.g. upstream's)")
    parser.add_argument("-k", dest="only", action="append", default=[],
                        help="only cases whose name contains this (repeatable)")
    parser.add_argument("--labels", nargs=2, default=("emulator", "upstream"),
                        metavar=("A", "B"))
    args = parser.parse_args(argv)
    try:
        print(compare(args.a, args.b, only=args.only, labels=tuple(args.labels)))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
