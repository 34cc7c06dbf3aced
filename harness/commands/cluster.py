"""``harness cluster up --local | --kind`` and ``harness cluster down``.

``up --local`` serves the built-in emulated cluster (Kubernetes API, KServe/Knative/KPA
controllers, kubelet, ingress; :mod:`harness.emulator.local_cluster`) on 127.0.0.1, writes
a plain-http kubeconfig, prints how to use it and runs until Ctrl-C or ``harness cluster
down`` (which finds it through a state file holding its pid and url). ``up --kind`` and
``down --kind`` create and delete a kind cluster with cert-manager, Knative Serving +
Kourier and KServe at pinned versions (:mod:`harness.kind`; ``--dry-run`` prints the
commands only). ``up --upstream`` runs the real control plane (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, built from their Go modules on first use) as
supervised processes with our node agent registering the nodes (:mod:`harness.upstream`),
in the foreground like ``--local``; ``down`` stops either. ``up --upstream`` holds the
host's one upstream-cluster slot for the cluster's whole life (:mod:`harness.upstream.hostlock`:
inherited from the process that started it, or waited for up to ``--lock-wait`` seconds).
Ctrl-C or SIGTERM while a cluster is still starting stops the bring-up at once and removes
what it had started (exit 128 + the signal's number).
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path

from harness.errors import UserError
from harness.nodeagent.childproc import pid_alive

_DOWN_WAIT_S = 60.0  # the upstream cluster stops its processes one by one


def default_state_dir() -> Path:
    env = os.environ.get("HARNESS_STATE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "harness" / "cluster"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = sub.add_parser("up", help="start a cluster and write a kubeconfig for it")
    how = up.add_mutually_exclusive_group(required=True)
    how.add_argument("--local", action="store_true",
                     help="the built-in emulated API server on 127.0.0.1")
    how.add_argument("--upstream", action="store_true",
                     help="the real Kubernetes control plane built from its Go modules, as "
                          "local processes, with our node agent (Linux, root)")
    how.add_argument("--kind", action="store_true",
                     help="a kind cluster with Knative, Kourier and KServe (needs kind, docker, "
                          "kubectl)")
    up.add_argument("--kubeconfig", type=Path, default=None,
                    help="where to write the kubeconfig (default: STATE_DIR/kubeconfig)")
    up.add_argument("--config", type=Path, default=None,
                    help="cluster file declaring the nodes (default: "
                         "fixtures/emulator/cluster.yaml; with --kind a kind Cluster file, "
                         "default fixtures/kind/cluster.yaml)")
    up.add_argument("--port", type=int, default=0, help="port to listen on (default: free)")
    up.add_argument("--profile", default=None,
                    help="profile whose config-autoscaler the cluster starts with (e.g. "
                         "fast; default: Knative's defaults)")
    up.add_argument("--serving", action="store_true",
                    help="with --upstream: install Knative Serving and KServe as their "
                         "releases do (objects read from the Go module cache, controllers "
                         "from the upstream build) and wait until they run")
    up.add_argument("--lock-wait", type=_seconds, default=None, metavar="SECONDS",
                    help="with --upstream: how long to wait for the host's one "
                         "upstream-cluster slot when another cluster holds it (default: "
                         "$HARNESS_UPSTREAM_LOCK_WAIT or 1800); then exit 2")
    up.add_argument("--mutation", action="append", default=[], metavar="NAME",
                    help="make the emulated cluster misbehave in one documented way "
                         "(repeatable; --local only): "
                         + ", ".join(sorted(_mutation_names())))
    down = sub.add_parser("down", help="stop the cluster started by 'harness cluster up'")
    down.add_argument("--kind", action="store_true", help="delete the kind cluster --name")
    for p in (up, down):
        p.add_argument("--name", default=None,
                       help="kind cluster name (--kind only; default: harness)")
        p.add_argument("--dry-run", action="store_true",
                       help="print the kind commands without running them (--kind only)")
    for p in (up, down):
        p.add_argument("--state-dir", type=Path, default=None,
                       help="where the running cluster is recorded (default: "
                            "$HARNESS_STATE_DIR or ~/.cache/harness/cluster)")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


def _mutation_names() -> list[str]:
    from harness.emulator.mutations import known

    return known()


def run(args: argparse.Namespace) -> int:
    state_dir = args.state_dir or default_state_dir()
    state_file = state_dir / "state.json"
    mutations = getattr(args, "mutation", None) or []
    if mutations:
        if args.kind:
            raise UserError("--mutation goes with --local")
        from harness.emulator.mutations import check_names

        check_names(mutations)
    if getattr(args, "lock_wait", None) is not None and not args.upstream:
        raise UserError("--lock-wait goes with --upstream (the host's one upstream-cluster "
                        "slot)")
    if getattr(args, "serving", False) and not args.upstream:
        raise UserError("--serving goes with --upstream (--kind installs Knative and KServe "
                        "itself; --local emulates them)")
    if args.kind:
        return _kind(args)
    if args.name is not None or args.dry_run:
        raise UserError("--name and --dry-run go with --kind")
    if args.action == "down":
        return _down(state_file)
    from harness.emulator.api.process import StartInterrupted

    try:
        if args.upstream:
            return _up_upstream(args, state_dir, state_file)
        return _up_local(args, state_dir, state_file)
    except StartInterrupted as exc:
        name = signal.Signals(exc.signum).name
        print(f"harness cluster: {name} while starting: stopped what had started",
              flush=True)
        return 128 + exc.signum


def _kind(args: argparse.Namespace) -> int:
    import harness.kind as kind

    name = args.name or "harness"
    if args.action == "down":
        return kind.down(name, dry_run=args.dry_run)
    return kind.up(name, profile=args.profile, cluster_file=args.config,
                   dry_run=args.dry_run)


def _up_local(args: argparse.Namespace, state_dir: Path, state_file: Path) -> int:
    from harness.emulator.api.process import read_state
    from harness.emulator.cluster_config import load_cluster_config
    from harness.emulator.local_cluster import profile_config, serve

    existing = read_state(state_file)
    if existing is not None and pid_alive(int(existing.get("pid", 0))):
        raise UserError(f"a local cluster is already running at {existing['url']} (pid "
                        f"{existing['pid']}); stop it with 'harness cluster down'")
    load_cluster_config(args.config)  # fail early, with the file and key named
    profile_config(args.profile)
    kubeconfig = (args.kubeconfig or state_dir / "kubeconfig").expanduser()

    def announce(emu: object) -> None:
        url = getattr(emu, "url", "")
        print(f"harness cluster: emulated Kubernetes API serving at {url}", flush=True)
        ingress = getattr(emu, "ingress_url", "")
        if ingress:
            print(f"  ingress:    {ingress} (Host: <isvc>-predictor.<namespace>.example.com)",
                  flush=True)
            print(f"  autoscaler metrics: {getattr(emu, 'metrics_url', '')}/metrics",
                  flush=True)
        print(f"  kubeconfig: {kubeconfig}", flush=True)
        print(f"  try:        kubectl --kubeconfig {kubeconfig} get nodes", flush=True)
        print(f"              export KUBECONFIG={kubeconfig}", flush=True)
        if args.mutation:
            print(f"  mutations:  {', '.join(args.mutation)} (misbehaving on purpose)",
                  flush=True)
        print("  stop with Ctrl-C or 'harness cluster down'", flush=True)

    try:
        serve(cluster=args.config, kubeconfig=kubeconfig, state_file=state_file,
              port=args.port, profile=args.profile, announce=announce,
              mutations=args.mutation)
    except OSError as exc:
        raise UserError(f"cannot start the local cluster: {exc}") from exc
    print("harness cluster: stopped", flush=True)
    return 0


def _refuse_running(state_file: Path) -> None:
    from harness.emulator.api.process import read_state

    existing = read_state(state_file)
    if existing is not None and pid_alive(int(existing.get("pid", 0))):
        raise UserError(f"a cluster is already running at {existing['url']} (pid "
                        f"{existing['pid']}); stop it with 'harness cluster down'")


def _up_upstream(args: argparse.Namespace, state_dir: Path, state_file: Path) -> int:
    from harness.upstream import hostlock
    from harness.upstream.control_plane import check_host

    if args.mutation or args.port:
        raise UserError("--mutation and --port go with --local")
    check_host()
    _refuse_running(state_file)

    def say(line: str) -> None:
        print(f"harness cluster: {line}", flush=True)

    with hostlock.hold(say, timeout_s=args.lock_wait, longer="--lock-wait SECONDS"):
        return _run_upstream(args, state_dir, state_file)


def _run_upstream(args: argparse.Namespace, state_dir: Path, state_file: Path) -> int:
    """The upstream cluster in the foreground, inside the host's slot."""
    from harness.emulator.api.process import run_until_signal
    from harness.upstream.control_plane import UpstreamCluster
    from harness.upstream.ingress.routes import INGRESS_CLASS

    kubeconfig = (args.kubeconfig or state_dir / "kubeconfig").expanduser()
    cluster = UpstreamCluster(state_dir=state_dir, cluster=args.config, profile=args.profile,
                              serving=args.serving)

    def announce(up: UpstreamCluster) -> None:
        print(f"harness cluster: Kubernetes control plane (upstream) serving at {up.url}, "
              f"ready in {up.ready_s:.1f} s (run {up.run_id})", flush=True)
        print(f"  ingress:    {up.ingress_url} (Knative ingress class "
              f"{INGRESS_CLASS})", flush=True)
        print(f"  kubeconfig: {kubeconfig}", flush=True)
        print(f"  try:        kubectl --kubeconfig {kubeconfig} get nodes", flush=True)
        print(f"              export KUBECONFIG={kubeconfig}", flush=True)
        print("  stop with Ctrl-C or 'harness cluster down'", flush=True)

    try:
        run_until_signal(cluster, kubeconfig=kubeconfig, state_file=state_file,
                         announce=announce,
                         state=lambda: {"url": cluster.url, "context": "harness-upstream",
                                        "upstream": True, "run_id": cluster.run_id,
                                        "ingress_url": cluster.ingress_url,
                                        "ingress_private_url": "http://127.0.0.1:"
                                        f"{cluster.ingress_ports.get('private', 0)}",
                                        "ingress_class": INGRESS_CLASS,
                                        "ready_s": round(cluster.ready_s, 1)})
    except OSError as exc:
        raise UserError(f"cannot start the upstream cluster: {exc}") from exc
    print("harness cluster: stopped", flush=True)
    return 0


def _looks_like_ours(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no procfs: trust the state file
    return b"harness" in cmdline


def _down(state_file: Path) -> int:
    from harness.emulator.api.process import read_state

    state = read_state(state_file)
    if state is None:
        print("harness cluster: no cluster is running", flush=True)
        return 0
    pid = int(state.get("pid", 0))
    if not pid_alive(pid) or not _looks_like_ours(pid):
        state_file.unlink(missing_ok=True)
        print("harness cluster: the recorded cluster is gone; cleaned up its state file",
              flush=True)
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _DOWN_WAIT_S
    while time.monotonic() < deadline:
        if not pid_alive(pid) or not state_file.exists():
            print(f"harness cluster: stopped the cluster at {state['url']}", flush=True)
            return 0
        time.sleep(0.1)
    raise UserError(f"the local cluster (pid {pid}) did not stop within {_DOWN_WAIT_S:.0f} s")
