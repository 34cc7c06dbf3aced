"""``harness conformance``: the conformance job (``make conformance``).

1. Configuration: resolve the profile's knobs, print the reference model's predictions
   for the documented scenarios (:mod:`harness.predictions`) and the documentation
   findings (claims that cannot hold on Knative). A bad profile stops here (exit 2).
2. Cluster: ``--cluster local`` (default) starts ``harness cluster up --local --profile
   P`` as a child process, one emulated cluster shared by every suite; ``upstream``
   starts ``harness cluster up --upstream --serving --profile P`` the same way (real
   Kubernetes, Knative Serving and KServe; root on Linux; it first takes the host's one
   upstream-cluster slot, waiting for it with a visible line: :mod:`harness.upstream.hostlock`),
   runs the preflight against it and names every component's version in the report
   (:mod:`harness.suite.cluster_info`); ``kind`` and ``current`` connect to an existing
   cluster (``current`` must be on the allow-list), checked before anything runs.
3. Suites: ``pytest suites/`` with the harness plugin (:mod:`harness.suite.plugin`),
   ``--workers`` pytest-xdist workers (each suite in its own namespace). By default the
   selected suites are collected once for their expected times (the reference model's,
   :mod:`harness.suite.plan`) and the run gets the fewest workers (at least 4) whose
   longest-first schedule (:mod:`harness.suite.schedule`) ends about when the longest
   suite does. ``--junitxml`` into the report; anything after ``--`` goes to pytest
   (``-- -k panic``). While they run, one line per running suite (what it does,
   elapsed / expected, ready and desired pods, panic: :mod:`harness.suite.progress`),
   live in a terminal, a plain block every ``--progress-every`` seconds otherwise.
4. Report: ``<report-dir>/<run-id>/`` (index.html, summary.json with the configuration
   part, junit.xml, timelines, records, tar.gz; ``cluster.log`` for ``upstream``); its
   path is printed. The cluster is stopped, also on failure and Ctrl-C; a ``kill -9`` of
   this command takes the emulator and pytest with it (``PR_SET_PDEATHSIG``: SIGKILL),
   and makes the upstream cluster tear itself down (SIGTERM), still holding the host's
   slot until it is gone.

Exit codes: 0 every check passed, 1 a check failed (or the run leaked objects), 2 bad
input (profile, cluster, options, no suite selected), 130 interrupted. (``make
conformance`` itself exits 2 whenever the command fails: that is make's own code.)
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.durations import format_duration
from harness.errors import UserError
from harness.files import data_path
from harness.nodeagent.childproc import die_with_parent
from harness.predictions import predict
from harness.resolve import Resolved, resolve

SUITES = data_path("suites")
DEFAULT_WORKERS = 4
MAX_PLANNED_WORKERS = 8
PLAN_MARGIN_S = 120.0
"""A planned run may end this much after its longest suite before a worker is added."""
CLUSTER_START_S = 60.0
CLUSTER_STOP_S = 30.0
UPSTREAM_START_S = float(os.environ.get("HARNESS_UPSTREAM_UP_TIMEOUT", "1800"))
"""A first ``harness cluster up --upstream`` builds the components (~25 min cold)."""
UPSTREAM_STOP_S = 120.0
PYTEST_GRACE_S = 60.0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="fast", metavar="NAME|FILE", help="default: fast")
    parser.add_argument("--cluster", default="local",
                        choices=["local", "kind", "current", "upstream"],
                        help="local: start the emulator (default); upstream: start the "
                             "real Kubernetes + Knative + KServe cluster (root, Linux); "
                             "kind: the cluster of 'make kind-up'; current: the active "
                             "kubeconfig context")
    parser.add_argument("--kubeconfig", default=None, metavar="PATH",
                        help="kubeconfig (with --cluster local or upstream: a cluster "
                             "already running)")
    parser.add_argument("--kube-context", default=None, metavar="NAME")
    parser.add_argument("--allowed-contexts", default=None, metavar="A,B",
                        help="contexts --cluster current may write to")
    parser.add_argument("--ingress-url", default=None, metavar="URL")
    parser.add_argument("--report-dir", default="reports", metavar="DIR")
    parser.add_argument("--run-id", default=None, help="default: a new one")
    parser.add_argument("--workers", default="plan", metavar="N|auto|plan",
                        help="pytest-xdist workers (default plan: at least "
                             f"{DEFAULT_WORKERS}, more when the suites' expected times need "
                             "them to end with the longest; 0: none)")
    parser.add_argument("--progress-every", type=float, default=30.0, metavar="SECONDS",
                        help="outside a terminal, print the running suites' progress "
                             "every SECONDS (default 30)")
    parser.add_argument("--keep-on-failure", action="store_true",
                        help="keep a failed suite's namespace for inspection")
    parser.add_argument("pytest_args", nargs="*", metavar="-- PYTEST_ARGS",
                        help="more pytest arguments after --, e.g. -- -k panic")


def run(args: argparse.Namespace) -> int:
    from harness.kube.namespaces import check_run_id, new_run_id

    resolved = resolve(profile=args.profile)
    profile = _profile_arg(args.profile)
    workers = _workers(args.workers)
    run_id = args.run_id or new_run_id()
    try:
        check_run_id(run_id)
    except ValueError as exc:
        raise UserError(str(exc), key="--run-id") from None
    report_dir = Path(args.report_dir).resolve()
    out = report_dir / run_id
    if out.exists():
        raise UserError("the report folder already exists", where=str(out))

    console = Console(highlight=False)
    if args.cluster == "upstream":
        from harness.upstream.control_plane import check_host

        check_host()   # root, Linux, ip, nft: one line and exit 2 before anything runs
    errors = _print_configuration(console, resolved, args.profile, run_id)
    if args.cluster not in ("local", "upstream") or args.kubeconfig:
        _preflight(args, profile, run_id)   # one started here: once it runs
    try:
        out.mkdir(parents=True, exist_ok=False)
    except OSError as exc:
        raise UserError(f"cannot create the report folder: {exc.strerror}",
                        where=str(out)) from None

    with (_terminate_as_interrupt(),
          tempfile.TemporaryDirectory(prefix="hx-conf-") as tmp,
          _removed_if_empty(out),
          _cluster(args, profile, run_id, Path(tmp), out, console) as started):
        if workers == "plan":
            workers = _planned_workers(args, profile, Path(tmp), console)
        argv = _pytest_argv(args, profile, run_id, report_dir, started, workers)
        console.print(f"Suites: {' '.join(argv[2:])}", markup=False, soft_wrap=True)
        rc = _run_pytest(argv, out, every_s=args.progress_every)
    page = out / "index.html"
    if page.exists():
        console.print(f"Report: {page}", soft_wrap=True)
    else:
        console.print(f"No report was written (no suite ran); see {out}", soft_wrap=True)
    if errors:
        console.print(f"{len(errors)} documentation finding(s) of severity error not "
                      "acknowledged by the profile: the documentation verdict fails on them")
    return _exit_code(rc)


# ----------------------------------------------------------------------------- steps


def _profile_arg(profile: str) -> str:
    """A profile file as an absolute path (pytest may run elsewhere), a name as is."""
    p = Path(profile)
    return str(p.resolve()) if p.suffix in (".yaml", ".yml") and p.exists() else profile


def _workers(text: str) -> int | str:
    if text in ("auto", "plan"):
        return text
    try:
        n = int(text)
    except ValueError:
        raise UserError(f"{text!r} is not a number of workers, 'auto' or 'plan'",
                        key="--workers") from None
    if n < 0:
        raise UserError("must not be negative", key="--workers")
    return n


def _print_configuration(console: Console, resolved: Resolved, profile: str,
                         run_id: str) -> list[object]:
    p = resolved.params
    name = resolved.profile.name if resolved.profile else str(profile)
    console.print(f"[bold]harness conformance[/] profile [cyan]{name}[/], run id {run_id}")
    console.print(
        f"stable window {format_duration(p.stable_window)}, panic window "
        f"{format_duration(p.panic_window)} at {p.panic_threshold_percentage:g} %, target "
        f"{p.target_per_pod:g} per pod, rates up {p.max_scale_up_rate:g} / down "
        f"{p.max_scale_down_rate:g}, scale-down delay {format_duration(p.scale_down_delay)}, "
        f"retention {format_duration(p.scale_to_zero_pod_retention_period)}"
    )
    table = Table(title="Reference model predictions (pods start instantly)")
    for col in ("scenario", "measure", "predicted", "detail"):
        table.add_column(col)
    for pr in predict(p):
        shown = "never" if pr.value is None else f"{pr.value:g} s"
        if pr.measure.startswith("largest step"):
            shown = "-" if pr.value is None else f"{pr.value:g}"
        table.add_row(pr.scenario, pr.measure, shown, pr.detail)
    console.print(table)
    acked = resolved.profile.acknowledged if resolved.profile is not None else {}
    errors = [f for f in resolved.findings if f.severity == "error" and f.id not in acked]
    console.print(f"Documentation findings: {len(resolved.findings)} "
                  f"({sum(f.severity == 'error' for f in resolved.findings)} errors, "
                  f"{sum(f.id in acked for f in resolved.findings)} acknowledged by the profile)")
    for f in resolved.findings:
        mark = f" (acknowledged: {acked[f.id]})" if f.id in acked else ""
        console.print(f"  [{f.severity}] {f.id}: {f.arithmetic}{mark}", markup=False)
    return list(errors)


def _planned_workers(args: argparse.Namespace, profile: str, tmp: Path,
                     console: Console) -> int:
    """Collect the selected suites once (``--collect-only``) for their expected times and
    take the fewest workers, at least :data:`DEFAULT_WORKERS`, whose longest-first
    schedule ends about when the longest suite does (:mod:`harness.suite.schedule`)."""
    from harness.suite.schedule import makespan, read_plan, workers_for

    extra = list(args.pytest_args)
    if any(a == "-n" or a.startswith(("-n", "--numprocesses")) for a in extra):
        return 0  # the user's -n decides
    plan_dir = tmp / "plan"
    argv = [sys.executable, "-m", "pytest", str(SUITES), "-p", "no:cacheprovider",
            "--collect-only", "-q", "--profile", profile, "--cluster", args.cluster,
            "--hx-plan-dir", str(plan_dir), *extra]
    subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False, timeout=300)
    expected = list(read_plan(plan_dir).values())
    if not expected:
        return DEFAULT_WORKERS
    n = workers_for(expected, at_least=min(DEFAULT_WORKERS, len(expected)),
                    at_most=max(DEFAULT_WORKERS, MAX_PLANNED_WORKERS),
                    margin=PLAN_MARGIN_S)
    console.print(f"Plan: {len(expected)} tests, longest {format_duration(max(expected))}, "
                  f"{n} workers, longest first: about {format_duration(makespan(expected, n))}",
                  soft_wrap=True)
    return n


def _allowed(args: argparse.Namespace) -> list[str]:
    return [c.strip() for c in (args.allowed_contexts or "").split(",") if c.strip()]


def _preflight(args: argparse.Namespace, profile: str, run_id: str, *,
               kubeconfig: str | None = None, ingress_url: str | None = None) -> None:
    """Connect once before pytest starts: a bad kubeconfig or context, a context not on
    the allow-list, or no ingress address is exit code 2 with one line."""
    from harness.suite.target import open_cluster

    handle = open_cluster(mode=args.cluster, profile=profile, run_id=run_id,
                          kubeconfig=kubeconfig or args.kubeconfig, context=args.kube_context,
                          allowed=_allowed(args), ingress_url=ingress_url or args.ingress_url)
    handle.close()


@contextmanager
def _removed_if_empty(out: Path) -> Iterator[None]:
    """A run that stops before anything was written (no cluster, no slot) leaves no
    report folder behind."""
    try:
        yield
    except BaseException:
        try:
            out.rmdir()   # only when empty
        except OSError:
            pass
        raise


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a cancelled CI job) cleans up like Ctrl-C."""

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class Started:
    """What the suites are pointed at: the kubeconfig, the ingress and the file naming the
    cluster's components (None: as the options say)."""

    kubeconfig: str | None = None
    ingress_url: str | None = None
    cluster_info: str | None = None


@contextmanager
def _cluster(args: argparse.Namespace, profile: str, run_id: str, tmp: Path, out: Path,
             console: Console) -> Iterator[Started]:
    """The cluster of ``--cluster``: started here (local, upstream) or as the options say."""
    if args.cluster == "local" and not args.kubeconfig:
        with _local_cluster(args, profile, tmp, console) as kubeconfig:
            yield Started(kubeconfig)
    elif args.cluster == "upstream" and not args.kubeconfig:
        with _upstream_cluster(args, profile, run_id, tmp, out, console) as started:
            yield started
    elif args.cluster == "upstream":
        yield Started(args.kubeconfig, args.ingress_url,
                      _cluster_info(args.kubeconfig, tmp / "cluster-info.json"))
    else:
        yield Started(args.kubeconfig, args.ingress_url)


@contextmanager
def _upstream_cluster(args: argparse.Namespace, profile: str, run_id: str, tmp: Path,
                      out: Path, console: Console) -> Iterator[Started]:
    """Hold the host's upstream-cluster slot, start ``harness cluster up --upstream
    --serving`` as a child (own session; SIGTERM from the kernel when this process dies,
    so it tears itself down; it inherits the slot's lock, which stays held until it has
    exited), echo its bring-up lines, run the preflight, name its components; yield;
    stop it. Its whole output goes to ``<report>/cluster.log``."""
    from harness.upstream import hostlock

    def say(line: str) -> None:
        console.print(f"Cluster: {line}", markup=False, soft_wrap=True)

    with hostlock.hold(say) as lock:
        kubeconfig = tmp / "kubeconfig"
        state = tmp / "state.json"
        log = out / "cluster.log"
        argv = [sys.executable, "-m", "harness", "cluster", "up", "--upstream", "--serving",
                "--profile", profile, "--kubeconfig", str(kubeconfig), "--state-dir", str(tmp)]
        with log.open("wb") as fh:
            proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    pass_fds=(lock.fileno(),),
                                    preexec_fn=functools.partial(die_with_parent,
                                                                 signal.SIGTERM))
        lock.close()   # the child holds it now, until it exits
        try:
            started = time.monotonic()
            _wait_for_state(proc, state, kubeconfig, log, UPSTREAM_START_S,
                            "the upstream cluster", echo=say)
            st = json.loads(state.read_text())
            say(f"upstream (pid {proc.pid}, run {st.get('run_id')}), ready in "
                f"{time.monotonic() - started:.0f} s, kubeconfig {kubeconfig}, ingress "
                f"{st.get('ingress_url')}, log {log}")
            ingress = args.ingress_url or st.get("ingress_url") or None
            info = _cluster_info(str(kubeconfig), tmp / "cluster-info.json")
            _preflight(args, profile, run_id, kubeconfig=str(kubeconfig),
                       ingress_url=ingress)
            yield Started(str(kubeconfig), ingress, info)
        finally:
            _stop(proc, UPSTREAM_STOP_S)
            console.print("Cluster: stopped")


def _cluster_info(kubeconfig: str, path: Path) -> str:
    """Write what the report names of the upstream cluster (:mod:`harness.suite.cluster_info`):
    the API server's ``/version`` and every built binary's module version."""
    from harness.kube.client import Kube
    from harness.suite.cluster_info import upstream_info, write_info
    from harness.upstream import build

    try:
        kube = Kube.connect(kubeconfig)
        try:
            served = kube.request("GET", "/version")
        finally:
            kube.close()
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - unreachable API: one line
        raise UserError(f"cannot read the upstream cluster's /version: {exc}") from None
    commits = {m: str(e.get("commit") or "")
               for m, e in build.load_versions()["modules"].items()}
    info = upstream_info(served, build.component_versions(), commits=commits)
    return str(write_info(path, info))


def _wait_for_state(proc: subprocess.Popen, state: Path, kubeconfig: Path, log: Path,
                    timeout: float, what: str, echo: Callable[[str], None] | None = None
                    ) -> None:
    """Until the child has written its state file and kubeconfig; echo its new log lines
    (``echo``); one line (UserError) when it exits or runs out of time first."""
    deadline = time.monotonic() + timeout
    seen = 0
    while not (state.exists() and kubeconfig.exists()):
        if echo is not None:
            seen = _echo_new(log, seen, echo)
        if proc.poll() is not None or time.monotonic() > deadline:
            if echo is not None:
                _echo_new(log, seen, echo)
            why = (f"exited with code {proc.returncode}" if proc.poll() is not None
                   else f"was not ready within {timeout:.0f} s")
            raise UserError(f"{what} did not start ({why}): {_error_line(log)}"
                            + (f" (log: {log})" if echo is not None else ""))
        time.sleep(0.1 if echo is None else 0.5)


def _echo_new(log: Path, seen: int, echo: Callable[[str], None]) -> int:
    try:
        with log.open("rb") as fh:
            fh.seek(seen)
            data = fh.read()
    except OSError:
        return seen
    end = data.rfind(b"\n") + 1
    for line in data[:end].decode(errors="replace").splitlines():
        if line.strip():
            echo(f"  | {line}")
    return seen + end


def _error_line(log: Path) -> str:
    """The child's error line (``harness cluster: error: ...``), else its last line."""
    lines = [x.strip() for x in log.read_text(errors="replace").splitlines() if x.strip()]
    at = [i for i, x in enumerate(lines) if x.startswith("harness") and "error:" in x]
    if not at:
        return (lines or [""])[-1]
    line = lines[at[-1]]
    if line.endswith(":") and at[-1] + 1 < len(lines):   # its first detail, e.g. the pod's
        line += " " + lines[at[-1] + 1]
    return line


@contextmanager
def _local_cluster(args: argparse.Namespace, profile: str, tmp: Path,
                   console: Console) -> Iterator[str]:
    """Start ``harness cluster up --local`` as a child (own session, so Ctrl-C reaches
    pytest first and the suites can still clean up; killed by the kernel when this process
    dies, even by SIGKILL: ``PR_SET_PDEATHSIG``); yield its kubeconfig; stop it."""
    kubeconfig = tmp / "kubeconfig"
    state = tmp / "state.json"
    log = tmp / "cluster.log"
    argv = [sys.executable, "-m", "harness", "cluster", "up", "--local", "--profile", profile,
            "--kubeconfig", str(kubeconfig), "--state-dir", str(tmp)]
    with log.open("wb") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=die_with_parent)
    try:
        _wait_for_state(proc, state, kubeconfig, log, CLUSTER_START_S, "the emulated cluster")
        console.print(f"Cluster: emulated (pid {proc.pid}), kubeconfig {kubeconfig}",
                      soft_wrap=True)
        yield str(kubeconfig)
    finally:
        _stop(proc)
        console.print("Cluster: stopped")


def _stop(proc: subprocess.Popen, grace_s: float = CLUSTER_STOP_S) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # anything of its group left behind
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(5)


def _pytest_argv(args: argparse.Namespace, profile: str, run_id: str, report_dir: Path,
                 started: Started | str | None, workers: int | str) -> list[str]:
    if not isinstance(started, Started):
        started = Started(started, args.ingress_url)
    kubeconfig = started.kubeconfig
    argv = [sys.executable, "-m", "pytest", str(SUITES), "-p", "no:cacheprovider",
            "--cluster", args.cluster, "--profile", profile, "--report-dir", str(report_dir),
            "--run-id", run_id, "--junitxml", str(report_dir / run_id / "junit.xml")]
    if kubeconfig:
        argv += ["--kubeconfig", str(Path(kubeconfig).expanduser().resolve())]
    if args.kube_context:
        argv += ["--kube-context", args.kube_context]
    if _allowed(args):
        argv += ["--allowed-contexts", ",".join(_allowed(args))]
    if started.ingress_url:
        argv += ["--ingress-url", started.ingress_url]
    if started.cluster_info:
        argv += ["--cluster-info", started.cluster_info]
    if args.keep_on_failure:
        argv.append("--keep-on-failure")
    extra = list(args.pytest_args)
    if workers and not any(a == "-n" or a.startswith(("-n", "--numprocesses")) for a in extra):
        argv += ["-n", str(workers)]
    return argv + extra


def _run_pytest(argv: list[str], run_dir: Path, *, every_s: float = 30.0) -> int:
    """Run pytest, its output passing through a :class:`ProgressDisplay` (one line per
    running suite: live in a terminal, a plain block every 30 s otherwise)."""
    from harness.suite.progress import ProgressDisplay

    display = ProgressDisplay(run_dir, every_s=max(0.2, every_s))
    if display.live and not any(a.startswith("--color") for a in argv):
        argv = [*argv, "--color=yes"]
    # SIGINT at its default even when this process was started with it ignored (a
    # background job): interrupting pytest is how the suites get to clean up
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # pytest's dots as they come
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, preexec_fn=_default_sigint, env=env)
    assert proc.stdout is not None
    display.start()
    try:
        while chunk := os.read(proc.stdout.fileno(), 4096):
            display.write(chunk.decode(errors="replace"))
        return proc.wait()
    except KeyboardInterrupt:
        # pytest got the terminal's SIGINT too (or gets one now): let it tear down
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            _drain(proc, display, PYTEST_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    finally:
        display.stop()


def _drain(proc: subprocess.Popen, display: object, timeout: float) -> None:
    """Pass on what pytest still prints while it tears down, up to ``timeout``."""
    import selectors

    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if sel.select(timeout=0.5):
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                display.write(chunk.decode(errors="replace"))  # type: ignore[attr-defined]
            elif proc.poll() is not None:
                break
    proc.wait(max(0.1, deadline - time.monotonic()))


def _default_sigint() -> None:
    """pytest's ``preexec_fn``: SIGINT at its default, and SIGKILL from the kernel when
    this process dies (a ``kill -9`` of ``harness conformance`` leaves no suite running)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    die_with_parent()


def _exit_code(pytest_rc: int) -> int:
    if pytest_rc == 0:
        return 0
    if pytest_rc == 1:
        return 1
    if pytest_rc == 2:
        return 130
    return 2  # 3 internal error, 4 usage error, 5 no tests collected
