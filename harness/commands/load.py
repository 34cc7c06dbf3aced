"""``harness load``: play a load profile against an inference endpoint with Locust.

    harness load PROFILE --url URL [--host HOST] [--out DIR] [--workers N]
    harness load PROFILE --workers N --master HOST:PORT     # workers for a remote master

PROFILE is a YAML file or the name of one in ``loadprofiles/`` (``burst``, ``step``...).
While it runs, one progress line (elapsed / total, users, achieved rate, errors); at the
end a summary table (requests, errors, p50/p90/p99 latency, achieved vs offered) and the
verdict on the generator. Exit 0 when the generator kept up, 1 when it did not (the
service's numbers are then not to be trusted), 2 for a bad profile or option.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from harness.errors import UserError
from harness.files import data_path
from harness.load.profile import LoadProfile, read_load_profile
from harness.load.result import LoadResult
from harness.load.runner import Progress, run_workers
from harness.load.runner import run as run_load

PROFILE_DIR = data_path("loadprofiles")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("profile", metavar="PROFILE",
                        help="load profile YAML, or a name in loadprofiles/ (e.g. burst)")
    parser.add_argument("--url", help="base URL of the inference endpoint or ingress")
    parser.add_argument("--host", dest="host_header", metavar="HOST",
                        help="Host header for Knative routing (<isvc>-predictor.<ns>.<domain>)")
    parser.add_argument("--out", metavar="DIR", help="output folder (default reports/load-...)")
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="run a Locust master and N worker processes on this machine")
    parser.add_argument("--master", metavar="HOST:PORT",
                        help="only run N workers here, for the master at HOST:PORT")
    parser.add_argument("--master-bind", metavar="HOST:PORT",
                        help="address the master listens on for workers (default 127.0.0.1)")
    parser.add_argument("--expect-workers", type=int, default=0, metavar="N",
                        help="also wait for N workers from other machines")
    parser.add_argument("--model", help="model name in the URL (default: the profile's)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def resolve_profile(name: str) -> LoadProfile:
    path = Path(name)
    if not path.exists() and "/" not in name and not path.suffix:
        candidate = PROFILE_DIR / f"{name}.yaml"
        if candidate.exists():
            path = candidate
    return read_load_profile(path if path.exists() else name)


def run(args: argparse.Namespace) -> int:
    profile = resolve_profile(args.profile)
    if args.master:
        if args.url:
            raise UserError("workers take the URL from their master; drop --url", key="--url")
        print(f"harness load: {args.workers} worker(s) for master {args.master}", file=sys.stderr)
        rc = run_workers(args.master, args.workers, profile=profile, out_dir=args.out)
        return 0 if rc == 0 else 1
    if not args.url:
        raise UserError("the endpoint to load is required", key="--url")
    out = args.out or f"reports/load-{profile.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    show = None if args.quiet else _progress_printer()
    result = run_load(
        profile, args.url, args.host_header, out, workers=args.workers, model=args.model,
        master_bind=args.master_bind, expect_workers=args.expect_workers, progress=show,
    )
    if show is not None:
        show(None)
    if args.json:
        json.dump(result.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_summary(result)
    return 0 if result.kept_up else 1


def _progress_printer():
    tty = sys.stderr.isatty()
    last = [0.0]

    def show(p: Progress | None) -> None:
        if p is None:
            if tty:
                sys.stderr.write("\n")
            return
        now = time.monotonic()
        if not tty and now - last[0] < 5.0:
            return
        last[0] = now
        line = (f"{p.elapsed:6.1f}s / {p.total:.0f}s  users {p.users:4d}  "
                f"rate {p.rate:7.1f}/s  requests {p.requests:7d}  errors {p.errors}")
        if not p.started:
            line = "starting Locust..."
        sys.stderr.write(("\r" + line.ljust(78)) if tty else line + "\n")
        sys.stderr.flush()

    return show


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def print_summary(result: LoadResult) -> None:
    from rich.console import Console
    from rich.table import Table

    s = result.summary
    lat = s.get("latency_ms", {})
    table = Table(title=f"load profile {result.profile.name!r} against {result.target_url}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("requests", str(s["requests"]))
    table.add_row("errors", f"{s['errors']} ({s['connection_errors']} connection)")
    if s.get("not_sent"):
        table.add_row("arrivals not sent", str(s["not_sent"]))
    for q in ("p50", "p90", "p99"):
        table.add_row(f"latency {q}", _ms(lat.get(q)))
    if "rate" in s:
        r = s["rate"]
        table.add_row("open loop: requests sent / offered",
                      f"{r['achieved']:.0f} / {r['offered']:.0f} in {r['seconds']} s")
    if "concurrency" in s:
        c = s["concurrency"]
        table.add_row("closed loop: mean concurrency / offered",
                      f"{c['achieved']:.2f} / {c['offered']:.2f} over {c['seconds']} s")
    if s.get("open_loop_lag_ms"):
        table.add_row("open-loop send lag p99", _ms(s["open_loop_lag_ms"]["p99"]))
    if s.get("pods"):
        table.add_row("serving pods", ", ".join(f"{k}: {v}" for k, v in s["pods"].items()))
    table.add_row("records", str(result.records_path))
    console = Console()
    console.print(table)
    if result.kept_up:
        console.print("generator: kept up with the profile")
    else:
        console.print("generator: did NOT keep up: " + "; ".join(result.reasons))
