"""``harness report DIR``: rebuild a run report's page, plots and archive from its raw data.

DIR is a run directory (``reports/<run-id>/``) holding ``summary.json`` and the case
timelines under ``cases/``. A directory that is not a run report ends with one line on
stderr and exit code 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="run directory (reports/<run-id>/)")
    parser.add_argument("--no-archive", action="store_true", help="do not rewrite the .tar.gz")


def run(args: argparse.Namespace) -> int:
    from harness.report import build_report, read_summary

    page = build_report(Path(args.dir), archive=not args.no_archive)
    summary = read_summary(Path(args.dir))
    counts = summary.get("counts") or {}
    print(f"{page}  ({counts.get('fail', 0)} fail, {counts.get('inconclusive', 0)} "
          f"inconclusive, {counts.get('pass', 0)} pass, {counts.get('skip', 0)} skip)")
    return 0
