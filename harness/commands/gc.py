"""``harness gc``: delete what crashed runs left behind, by the run label.

Deletes namespaces named ``hx-*`` *and* labelled ``harness.kserve.dev/run-id`` whose
creation is older than ``--older-than`` (default ``2h``, so runs in progress are left
alone); nothing without the label is looked at. The context must be on the allow-list
(``--allow-context``, ``HARNESS_ALLOWED_CONTEXTS`` or the allow-list file), as for any
write. ``--dry-run`` lists what would go. Exit 0 when done, 2 on a usage error.

First it sweeps this machine for what crashed ``harness cluster up --upstream`` runs left
(their processes and folders, :mod:`harness.upstream.sweep`); ``--local-only`` stops there.
"""

from __future__ import annotations

import argparse

from harness.durations import DurationError, parse_duration
from harness.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--older-than", default="2h", metavar="DURATION",
                        help="only namespaces created longer ago than this (default 2h)")
    parser.add_argument("--kubeconfig", default=None, metavar="FILE",
                        help="kubeconfig (default: $KUBECONFIG or ~/.kube/config)")
    parser.add_argument("--context", default=None, help="kubeconfig context (default: current)")
    parser.add_argument("--allow-context", action="append", default=[], metavar="NAME",
                        help="allow writes on this context (repeatable)")
    parser.add_argument("--dry-run", action="store_true", help="list, delete nothing")
    parser.add_argument("--wait", action="store_true", help="wait until they are gone")
    parser.add_argument("--local-only", action="store_true",
                        help="only sweep this machine for crashed upstream-cluster runs")


def _sweep_local(dry_run: bool) -> None:
    from harness.upstream.sweep import sweep

    result = sweep(dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for pid, run in result.processes:
        print(f"{verb} process {pid} of crashed upstream run {run}")
    for folder in result.folders:
        print(f"{verb} folder {folder}")
    for item in result.network:
        print(f"{verb} {item}")
    if result.processes or result.runs:
        print(f"{verb} {len(result.processes)} process(es) of {len(result.runs)} crashed "
              "upstream run(s)")


def run(args: argparse.Namespace) -> int:
    _sweep_local(args.dry_run)
    if args.local_only:
        return 0
    from harness.kube.client import Kube, resolve_context
    from harness.kube.namespaces import gc
    from harness.kube.safety import Guard

    try:
        older_than = parse_duration(args.older_than)
    except DurationError as exc:
        raise UserError(str(exc), key="--older-than") from None
    if older_than < 0:
        raise UserError("must not be negative", key="--older-than")
    context = resolve_context(args.kubeconfig, args.context)
    guard = Guard.from_options(context, mode="current", allow=args.allow_context)
    if not args.dry_run:
        guard.check_context()
    with Kube.connect(args.kubeconfig, context, guard=guard) as kube:
        result = gc(kube, older_than, dry_run=args.dry_run, wait=args.wait)
    verb = "would delete" if args.dry_run else "deleted"
    for name in result.deleted:
        print(f"{verb} namespace/{name}")
    for name, why in result.kept:
        print(f"kept namespace/{name}: {why}")
    print(f"{verb} {len(result.deleted)} namespace(s) on context {context!r}")
    return 0
