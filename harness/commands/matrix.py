"""``harness matrix``: the real mutation matrix (``make upstream-matrix``).

Brings up ONE ``harness cluster up --upstream --serving`` with the matrix profile
(:data:`harness.matrix.scenarios.PROFILE`; the host's upstream slot held as ``harness
conformance`` holds it), records every configuration of :mod:`harness.matrix.upstream`
on it (baseline, the per-revision mutations at once, each cluster-wide change in turn,
restored after), saves each as ``<record dir>/<config>.json.gz``, tears the cluster down,
runs the nine checks on each and prints the check x configuration table.
``--kubeconfig``/``--ingress-url`` use a cluster that is already up (started with the
matrix profile); ``--replay DIR`` evaluates saved recordings without any cluster.

Exit codes: 0 every cell as expected (each mutation fails its own check and no other,
the baseline passes all nine), 1 an unexpected cell, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console

from harness.errors import UserError

DEFAULT_RECORD = "reports/upstream-matrix"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", default="upstream", choices=["upstream"],
                        help="upstream: real Kubernetes + Knative + KServe (root, Linux); "
                             "the emulator's matrix is 'make mutation-matrix'")
    parser.add_argument("--record", default=None, metavar="DIR",
                        help=f"where the recordings go (default {DEFAULT_RECORD}/<run id>)")
    parser.add_argument("--only", default="", metavar="A,B",
                        help="record only these configurations (baseline and/or mutation "
                             "names)")
    parser.add_argument("--replay", default=None, metavar="DIR",
                        help="evaluate the recordings in DIR (no cluster)")
    parser.add_argument("--kubeconfig", default=None, metavar="PATH",
                        help="a running 'harness cluster up --upstream --serving' started "
                             "with the matrix profile (default: start one)")
    parser.add_argument("--ingress-url", default=None, metavar="URL",
                        help="its ingress (with --kubeconfig)")


def run(args: argparse.Namespace) -> int:
    from harness.matrix import upstream

    console = Console(highlight=False)
    only = upstream.check_configs(c.strip() for c in args.only.split(",") if c.strip())
    if args.replay:
        return _evaluate(console, _load(Path(args.replay), only))
    if args.kubeconfig and not args.ingress_url:
        raise UserError("--kubeconfig needs --ingress-url (the cluster's ingress)")
    from harness.kube.namespaces import new_run_id

    run_id = new_run_id()
    out = Path(args.record or Path(DEFAULT_RECORD) / run_id).resolve()
    if out.exists() and any(out.glob("*.json.gz")):
        raise UserError("the record folder already holds recordings", where=str(out))
    configs = only or list(upstream.CONFIGS)
    started = time.monotonic()
    if args.kubeconfig:
        _record(console, args.kubeconfig, args.ingress_url, configs, out)
    else:
        _record_on_new_cluster(console, run_id, configs, out)
    console.print(f"Recorded {len(configs)} configuration(s) in "
                  f"{time.monotonic() - started:.0f} s: {out}", soft_wrap=True)
    return _evaluate(console, _load(out, configs))


def _record(console: Console, kubeconfig: str, ingress_url: str, configs: list[str],
            out: Path) -> None:
    from kubernetes import config as k8s_config

    from harness.matrix import upstream

    api = k8s_config.new_client_from_config(config_file=str(kubeconfig))
    try:
        upstream.record_all(api, ingress_url, configs,
                            say=lambda line: console.print(line, markup=False),
                            saved=upstream.save_dir(out))
    finally:
        api.close()


def _record_on_new_cluster(console: Console, run_id: str, configs: list[str],
                           out: Path) -> None:
    """Hold the host's slot, start the cluster as ``harness conformance --cluster upstream``
    does (its log in ``<out>/cluster.log``), record, stop it."""
    from harness.commands.conformance import _terminate_as_interrupt, _upstream_cluster
    from harness.matrix.scenarios import write_profile
    from harness.upstream.control_plane import check_host

    check_host()
    out.mkdir(parents=True, exist_ok=True)
    cluster_args = argparse.Namespace(cluster="upstream", kubeconfig=None, ingress_url=None,
                                      kube_context=None, allowed_contexts=None)
    with (_terminate_as_interrupt(),
          tempfile.TemporaryDirectory(prefix="hx-matrix-") as tmp):
        profile = str(write_profile(tmp))
        with _upstream_cluster(cluster_args, profile, run_id, Path(tmp), out,
                               console) as started:
            assert started.kubeconfig and started.ingress_url
            _record(console, started.kubeconfig, started.ingress_url, configs, out)


def _load(folder: Path, only: list[str]) -> dict[str, object]:
    from harness.matrix import upstream
    from harness.matrix.scenarios import Run

    if not folder.is_dir():
        raise UserError("no such folder", where=str(folder))
    runs = {}
    for config in only or upstream.CONFIGS:
        path = folder / f"{config}.json.gz"
        if path.exists():
            runs[config] = Run.load(path)
        elif only:
            raise UserError(f"no recording of {config}", where=str(path))
    if not runs:
        raise UserError("no recordings (<configuration>.json.gz) in the folder",
                        where=str(folder))
    return runs


def _evaluate(console: Console, runs: dict[str, object]) -> int:
    from harness.matrix import evaluation, upstream
    from harness.matrix.scenarios import write_profile

    with tempfile.TemporaryDirectory(prefix="hx-matrix-") as tmp:
        profile = write_profile(tmp)
        rows = {c: evaluation.run_checks(r, profile) for c, r in runs.items()}  # type: ignore[arg-type]
    console.print(evaluation.table(rows, upstream.TARGETS), markup=False, soft_wrap=True)
    bad = evaluation.unexpected(rows, upstream.TARGETS)
    for config, cells in bad.items():
        for check, v in cells.items():
            console.print(f"unexpected: {config} / {check}: {v.status} ({v.why[:200]})",
                          markup=False, soft_wrap=True)
    missing = [c for c in upstream.CONFIGS if c not in rows]
    if missing:
        console.print(f"not recorded: {', '.join(missing)}", markup=False)
    return 1 if bad else 0
