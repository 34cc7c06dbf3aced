"""pytest plugin of the conformance suites (``suites/``): options, markers, fixtures, and
the run report at session end.

Loaded by ``suites/conftest.py`` (``pytest_plugins``), so it is active only where the
suites are collected, never in the harness's own ``tests/``; elsewhere load it with
``-p harness.suite.plugin``. How to run::

    make conformance                                  # emulator + every suite, fast profile
    harness conformance --profile fast -- -k panic    # the same, only some suites
    # against a cluster that is already running (one emulator shared by the workers):
    harness cluster up --local --profile fast --kubeconfig /tmp/k &
    pytest suites/ --cluster local --kubeconfig /tmp/k --profile fast -n 3 \\
        --report-dir reports --run-id <run-id>     # -> reports/<run-id>/, junit.xml too
    # the active kubeconfig context (must be allowed), the documented profile:
    pytest suites/ --cluster current --allowed-contexts staging --profile coreweave -m slow

Options: ``--cluster local|kind|current|upstream`` (local without ``--kubeconfig`` starts
an emulator inside each pytest process; upstream needs the ``--kubeconfig`` of a running
``harness cluster up --upstream --serving``), ``--cluster-info`` (the cluster's
components and versions for the report and junit.xml's properties), ``--kubeconfig``,
``--kube-context``, ``--profile``, ``--report-dir``, ``--run-id``, ``--keep-on-failure``,
``--allowed-contexts``, ``--ingress-url``, ``--slow-after``.

Fixtures: ``cluster`` (session, :class:`~harness.suite.target.ClusterHandle`),
``run_id`` (session), ``profile_name``, ``namespace`` (per test ``hx-<run-id>-<test>``,
labelled, deleted at the end, also on failure and Ctrl-C, unless ``--keep-on-failure``
and the test failed), ``deploy_isvc(source, patch=..., annotations=...)`` ->
:class:`~harness.suite.case.Deployed`, ``load(profile, isvc)`` ->
:class:`~harness.load.result.LoadResult`, ``timeline`` (the test's
:class:`~harness.suite.case.CaseData`: ``start()``, ``wait(...)``, ``frames(isvc)``,
``records()``, ``check(*verdicts)`` which attaches the verdicts to the report and
asserts they passed). ``timeline.wait(predicate, until=plan.Wait)`` waits as long as
the reference model says (:mod:`harness.suite.plan`); when it runs out the test goes on
and its verdicts fail with what was not reached, the trajectory so far in the report. A
test that fails before its check leaves a failing verdict with the error.

Markers: ``slow`` (needs the profile's real durations) and ``gpu`` (needs GPU nodes; the
emulator has fake ones) are skipped unless selected with ``-m``; on ``--cluster local``
and ``upstream`` (whose nodes are the same declared ones) ``gpu`` tests run.
``needs_time(f)`` states a test's expected seconds as a function of the effective knobs
(the suites take it from :mod:`harness.suite.plan`); the pytest timeout comes from the
same number; over ``--slow-after`` seconds (default 180: e.g. every scale-to-zero wait
under ``coreweave``) the test counts as ``slow``. The tests run
longest first (:mod:`harness.suite.schedule`, also across xdist workers).

Under pytest-xdist every worker runs its tests in their own namespaces; the controlling
process writes ``<report-dir>/<run-id>/`` and runs the leak check at the end (a leak
makes the run fail). Each running test keeps ``<run dir>/.progress/<test>.json`` current
(:mod:`harness.suite.progress`), for ``harness conformance``'s progress lines.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.suite.schedule import run_dir_of

if TYPE_CHECKING:
    from harness.checks.verdict import Verdict
    from harness.load.result import LoadResult
    from harness.observe.frames import Frames
    from harness.suite.case import CaseData, Deployed
    from harness.suite.plan import Wait
    from harness.suite.target import ClusterHandle

RUN_ID_KEY = "hx_run_id"
MARKERS = {
    "slow": "needs the profile's real durations (minutes); skipped unless -m selects it",
    "gpu": "needs GPU nodes (the emulator has fake ones); skipped on a real cluster unless "
           "-m selects it",
    "needs_time": "needs_time(f): f(effective KPAParams) is the test's duration in seconds; "
                  "over --slow-after the test is slow",
}


# ----------------------------------------------------------------------------- options


def _cluster_mode(text: str) -> str:
    if text not in ("local", "kind", "current", "upstream"):
        raise pytest.UsageError(f"--cluster must be local, kind, current or upstream, not "
                                f"{text!r}")
    return text


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("harness", "KServe/Knative autoscaling conformance")
    g.addoption("--cluster", dest="hx_cluster", metavar="local|kind|current|upstream",
                default="local", type=_cluster_mode,
                help="where the suites run (default: local, the emulator; upstream: a "
                     "running 'harness cluster up --upstream --serving', with --kubeconfig)")
    g.addoption("--kubeconfig", dest="hx_kubeconfig", metavar="PATH", default=None,
                help="kubeconfig of the cluster (with --cluster local: an emulator that is "
                     "already running, shared by every worker)")
    g.addoption("--kube-context", dest="hx_context", metavar="NAME", default=None,
                help="kubeconfig context (default: the current one; kind: kind-harness)")
    g.addoption("--profile", dest="hx_profile", metavar="NAME|FILE", default="fast",
                help="documented behaviour to check (default: fast)")
    g.addoption("--report-dir", dest="hx_report_dir", metavar="DIR", default="reports",
                help="the report goes to DIR/<run-id>/ (default: reports)")
    g.addoption("--run-id", dest="hx_run_id", metavar="ID", default=None,
                help="run id (namespaces hx-<run-id>-<test>; default: a new one)")
    g.addoption("--keep-on-failure", dest="hx_keep", action="store_true",
                help="keep a failed test's namespace for inspection")
    g.addoption("--allowed-contexts", dest="hx_allowed", metavar="A,B", action="append",
                type=_csv, default=[],
                help="contexts --cluster current may write to (also "
                     "HARNESS_ALLOWED_CONTEXTS and ~/.config/harness/allowed-contexts)")
    g.addoption("--slow-after", dest="hx_slow_after", metavar="SECONDS", type=float,
                default=180.0,
                help="a needs_time test longer than this under the profile is slow "
                     "(default 180)")
    g.addoption("--hx-plan-dir", dest="hx_plan", metavar="DIR", default=None,
                help="write the plan (expected seconds per test) to DIR/.plan.json "
                     "(harness conformance sizes the workers with --collect-only)")
    g.addoption("--cluster-info", dest="hx_cluster_info", metavar="FILE", default=None,
                help="JSON naming the cluster's components and versions for the report "
                     "(harness conformance --cluster upstream writes it)")
    g.addoption("--ingress-url", dest="hx_ingress", metavar="URL", default=None,
                help="the ingress gateway's URL (default: found from the Kourier/Istio "
                     "service)")


@pytest.hookimpl(tryfirst=True)  # before junitxml reads --junitxml
def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get(RUN_ID_KEY):
        config.option.hx_run_id = workerinput[RUN_ID_KEY]
    elif not config.option.hx_run_id:
        from harness.kube.namespaces import new_run_id

        config.option.hx_run_id = new_run_id()
    else:
        from harness.kube.namespaces import check_run_id

        try:
            check_run_id(config.option.hx_run_id)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
    if workerinput is None and not config.option.xmlpath and not config.option.collectonly:
        config.option.xmlpath = str(run_dir_of(config) / "junit.xml")  # into the bundle
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(), "harness-xdist")


class _XdistHooks:
    """Registered only with pytest-xdist: hand the run id to every worker, and schedule
    the tests longest first (:mod:`harness.suite.schedule`)."""

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[RUN_ID_KEY] = node.config.option.hx_run_id

    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        if config.getvalue("dist") not in ("load", "no", None):
            return None  # --dist loadscope etc.: the user's choice
        from harness.suite.schedule import LongestFirst

        return LongestFirst(config, log)


_INFO = pytest.StashKey[dict]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """The controlling process names the cluster (and, from ``--cluster-info``, every
    component's version) in junit.xml's ``<properties>``."""
    config = session.config
    if hasattr(config, "workerinput"):
        return
    from harness.suite.cluster_info import junit_properties, read_info

    info = None
    if config.option.hx_cluster_info:
        from harness.errors import UserError

        try:
            info = read_info(config.option.hx_cluster_info)
        except UserError as exc:
            raise pytest.UsageError(f"--cluster-info: {exc}") from None
        config.stash[_INFO] = info
    from _pytest.junitxml import xml_key

    xml = config.stash.get(xml_key, None)
    if xml is not None:
        for name, value in junit_properties(config.option.hx_cluster, info):
            xml.add_global_property(name, value)


def _selected(config: pytest.Config, marker: str) -> bool:
    return marker in (config.option.markexpr or "")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``needs_time`` tests whose duration under the profile exceeds ``--slow-after``
    become ``slow`` (before ``-m`` selects); then unselected slow/gpu tests are skipped."""
    _mark_slow_by_profile(config, items)
    local = config.option.hx_cluster in ("local", "upstream")  # the declared fake GPU nodes
    for item in items:
        for marker in ("slow", "gpu"):
            if item.get_closest_marker(marker) is None or _selected(config, marker):
                continue
            if marker == "gpu" and local:
                continue
            item.add_marker(pytest.mark.skip(reason=f"{marker}: {MARKERS[marker]}"
                                                    + _needs(item)))


TIMEOUT_FACTOR = 1.25
TIMEOUT_MARGIN_S = 120.0
"""pytest-timeout of a ``needs_time`` test: its expected seconds x factor + margin (the
same number its waits, the schedule and the progress line come from)."""


def _mark_slow_by_profile(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every ``needs_time`` test gets its expected seconds under the profile (the plan:
    ``needs_s`` and ``<run dir>/.plan.json``) and a timeout from the same number; over
    ``--slow-after`` it is ``slow``; the tests run longest first."""
    timed = [(item, m) for item in items if (m := item.get_closest_marker("needs_time"))]
    if not timed:
        return
    from harness.errors import UserError
    from harness.resolve import resolve

    try:
        params = resolve(profile=config.option.hx_profile).params
    except UserError as exc:
        raise pytest.UsageError(f"--profile: {exc}") from None
    limit = float(config.option.hx_slow_after)
    for item, marker in timed:
        seconds = float(marker.args[0](params))
        item.user_properties.append(("needs_s", round(seconds)))
        # pytest-timeout reads the closest marker: room for the real durations
        item.add_marker(pytest.mark.timeout(int(seconds * TIMEOUT_FACTOR
                                                + TIMEOUT_MARGIN_S)))
        if seconds > limit:
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda it: -_expected_s(it))  # stable: ties keep their order


def _expected_s(item: pytest.Item) -> float:
    """The test's planned seconds (1 when it is skipped)."""
    from harness.suite.schedule import DEFAULT_EXPECTED_S

    if item.get_closest_marker("skip") is not None:
        return 1.0
    return float(dict(item.user_properties).get("needs_s", DEFAULT_EXPECTED_S))


def pytest_collection_finish(session: pytest.Session) -> None:
    """The plan of the selected tests: ``<run dir>/.plan.json`` (or ``--hx-plan-dir``)."""
    config = session.config
    if config.option.collectonly and not config.option.hx_plan:
        return
    from harness.suite.schedule import write_plan

    write_plan(Path(config.option.hx_plan) if config.option.hx_plan else run_dir_of(config),
               {item.nodeid: _expected_s(item) for item in session.items})


def _needs(item: pytest.Item) -> str:
    needs = dict(item.user_properties).get("needs_s")
    return "" if needs is None else f" (needs about {needs} s with this profile)"


# ----------------------------------------------------------------------------- results


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        item.stash.setdefault(_FAILED, set()).add(report.when)
        if call.excinfo is not None and _ERROR not in item.stash:
            item.stash[_ERROR] = call.excinfo.exconly().strip().splitlines()[0][:300]
    return report


_FAILED = pytest.StashKey[set]()
_ERROR = pytest.StashKey[str]()


def error_verdict(test: str, error: str) -> Verdict:
    """The verdict of a test that failed before any check ran (deploy, load, cluster)."""
    from harness.checks.verdict import FAIL, Verdict

    return Verdict(f"{test}: error", "the suite ran to its check", "harness", FAIL,
                   expected="the suite reaches its check", observed=error or "an error",
                   why=f"the test ended before its check: {error or 'an error'}")


def _failed(request: pytest.FixtureRequest) -> bool:
    return bool(request.node.stash.get(_FAILED, set()))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if hasattr(config, "workerinput"):
        return  # workers leave parts; the controlling process writes the report
    from harness.suite import session_end as rep

    run_dir = run_dir_of(config)
    if not (run_dir / rep.PARTS).exists():
        return
    leaks: list[str] = []
    kept = rep.kept_namespaces(run_dir)
    kubeconfig = config.option.hx_kubeconfig
    if kubeconfig or config.option.hx_cluster != "local":
        leaks = _leak_check(config, kept)
    else:
        leaks = list(config.stash.get(_LEAKS, []))
    meta = {"profile": config.option.hx_profile, "cluster": config.option.hx_cluster,
            "cluster_tested": True, "exitstatus": int(exitstatus), "leaks": leaks}
    info = config.stash.get(_INFO, None)
    if info and info.get("components"):
        meta["components"] = list(info["components"])
    notes: list[str] = []
    preflight = run_dir / rep.PARTS / PREFLIGHT_FILE
    if preflight.exists():
        meta["preflight"] = [line for line in preflight.read_text().splitlines() if line]
        notes += [f"harness {line}" for line in meta["preflight"]]
    page = rep.finish_report(run_dir, run_id=str(config.option.hx_run_id), meta=meta,
                             notes=notes)
    if leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    lines = config.stash.setdefault(_LINES, [])
    lines += notes
    if leaks:
        lines.append(f"harness: the run left {len(leaks)} object(s) behind: "
                     + ", ".join(leaks[:5]))
    lines += [f"harness: kept namespace {ns} (--keep-on-failure)" for ns in sorted(kept)]
    if page is not None:
        lines += _timing_lines(run_dir)
        lines.append(f"harness: report {page}")


def _timing_lines(run_dir: Path) -> list[str]:
    """Each suite's time against its expected time, longest expected first."""
    import json

    from harness.durations import format_duration

    try:
        cases = json.loads((run_dir / "summary.json").read_text()).get("cases") or {}
    except (OSError, ValueError):
        return []
    rows = sorted(((n, c) for n, c in cases.items() if c.get("took_s") is not None),
                  key=lambda nc: -float(nc[1].get("expected_s") or 0))
    out = []
    for name, c in rows:
        exp = c.get("expected_s")
        shown = f"{format_duration(round(float(exp)))} expected" if exp else "no plan"
        out.append(f"harness: {name} took {format_duration(round(float(c['took_s'])))} "
                   f"({shown}), {c.get('outcome', '')}")
    return out


_LINES = pytest.StashKey[list]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config
                            ) -> None:
    lines = config.stash.get(_LINES, [])
    if lines:
        terminalreporter.section("harness conformance")
        for line in lines:
            terminalreporter.write_line(line, red="left" in line)


def _leak_check(config: pytest.Config, kept: set[str]) -> list[str]:
    from harness.suite.target import open_cluster

    try:
        handle = open_cluster(mode=config.option.hx_cluster, profile=config.option.hx_profile,
                              run_id=str(config.option.hx_run_id),
                              kubeconfig=config.option.hx_kubeconfig,
                              context=config.option.hx_context,
                              allowed=[c for cs in config.option.hx_allowed for c in cs],
                              ingress_url=config.option.hx_ingress or "http://unused")
    except Exception as exc:  # noqa: BLE001 - the cluster may be gone
        return [f"leak check impossible: {exc}"]
    try:
        from harness.suite.session_end import REAL_CLUSTER_LEAK_WAIT_S, leak_check

        return leak_check(handle.kube, str(config.option.hx_run_id), keep=kept,
                          wait_s=REAL_CLUSTER_LEAK_WAIT_S if config.option.hx_cluster
                          != "local" else None)
    finally:
        handle.close()


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def run_id(pytestconfig: pytest.Config) -> str:
    """This run's id (shared by every xdist worker): namespaces are hx-<run-id>-<test>."""
    return str(pytestconfig.option.hx_run_id)


@pytest.fixture(scope="session")
def profile_name(pytestconfig: pytest.Config) -> str:
    """The profile (``--profile``) whose documented behaviour the suites check."""
    from harness.profiles import load_profile

    name = str(pytestconfig.option.hx_profile)
    load_profile(name)  # a bad profile fails here, once
    return name


@pytest.fixture(scope="session")
def cluster(pytestconfig: pytest.Config, run_id: str, profile_name: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHandle]:
    """The cluster of ``--cluster`` (started here for local without ``--kubeconfig``)."""
    from harness.errors import UserError
    from harness.suite.target import open_cluster

    opt = pytestconfig.option
    try:
        handle = open_cluster(mode=opt.hx_cluster, profile=profile_name, run_id=run_id,
                              kubeconfig=opt.hx_kubeconfig, context=opt.hx_context,
                              allowed=[c for cs in opt.hx_allowed for c in cs],
                              ingress_url=opt.hx_ingress,
                              workdir=tmp_path_factory.mktemp("cluster"))
    except UserError as exc:  # every test errors with this one line (xdist-safe)
        pytest.fail(f"harness: {exc}", pytrace=False)
    from harness.kube.crds import skip_reason

    missing = skip_reason(handle.kube)
    if missing:  # a cluster without KServe or Knative: skipped with the reason, not failed
        handle.close()
        pytest.skip(f"harness: {missing}")
    if handle.mode in ("kind", "current", "upstream"):
        _preflight(pytestconfig, handle)
    previous = signal.getsignal(signal.SIGTERM)
    if handle.local is not None and previous is signal.SIG_DFL:
        # a terminated run still stops its emulator and model servers
        try:
            signal.signal(signal.SIGTERM, _raise_interrupt)
        except ValueError:  # not the main thread
            pass
    try:
        if handle.local is not None:
            from harness.suite.session_end import leak_check

            yield handle
            leaks = leak_check(handle.kube, run_id,
                               keep=_kept(pytestconfig), wait_s=10.0)
            if leaks:
                pytestconfig.stash[_LEAKS] = leaks
        else:
            yield handle
    finally:
        handle.close()
        if signal.getsignal(signal.SIGTERM) is _raise_interrupt:
            signal.signal(signal.SIGTERM, previous)


_LEAKS = pytest.StashKey[list]()
PREFLIGHT_FILE = "preflight.txt"


def _preflight(config: pytest.Config, handle: ClusterHandle) -> None:
    """Read the cluster's prerequisites before any namespace exists; print one line per
    unmet one (the controlling process repeats them in the run summary)."""
    import sys

    from harness.suite.preflight import run_preflight

    handle.preflight = run_preflight(handle.kube, handle.mode, gateway=handle.gateway)
    lines = handle.preflight.lines()
    if not lines:
        return
    parts = run_dir_of(config) / ".parts"
    parts.mkdir(parents=True, exist_ok=True)
    (parts / PREFLIGHT_FILE).write_text("\n".join(lines) + "\n")
    if not hasattr(config, "workerinput"):
        for line in lines:
            print(f"harness {line}", file=sys.__stderr__, flush=True)


def _kept(config: pytest.Config) -> set[str]:
    from harness.suite.session_end import kept_namespaces

    return kept_namespaces(run_dir_of(config))


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@pytest.fixture
def _hx_case(request: pytest.FixtureRequest, cluster: ClusterHandle, run_id: str,
             profile_name: str, tmp_path: Path) -> Iterator[CaseData]:
    from harness.kube.namespaces import create_namespace, delete_namespace
    from harness.suite.case import CaseData
    from harness.suite.progress import ProgressWriter
    from harness.suite.session_end import note_kept

    node = request.node
    test = f"{Path(str(node.path)).stem.removeprefix('test_')}-{node.name.removeprefix('test_')}"
    run_dir = run_dir_of(request.config)
    expected = dict(node.user_properties).get("needs_s")
    progress = ProgressWriter(run_dir, test, expected,
                              lambda: {**case.progress, **case.live_state()})
    case = CaseData(name=test, cluster=cluster, namespace="", out_dir=tmp_path,
                    profile=profile_name)
    progress.start()
    case.set_phase("creates its namespace")
    ns = case.namespace = create_namespace(cluster.kube, run_id, test)
    case.set_phase("")
    try:
        yield case
    finally:
        failed = _failed(request)
        outcome = "failed" if failed else "passed"
        took = progress.stop(outcome)
        case.meta["took_s"] = round(took, 1)
        case.meta["expected_s"] = expected
        if failed and not case.verdicts:  # never a test without a verdict in the report
            case.attach(error_verdict(test, request.node.stash.get(_ERROR, "")))
        try:
            case.save(run_dir, outcome=outcome)
        finally:
            if failed and request.config.option.hx_keep:
                note_kept(run_dir, ns)
            else:
                try:
                    delete_namespace(cluster.kube, ns)
                finally:
                    cluster.kube.guard.disown(ns)


@pytest.fixture
def namespace(_hx_case: CaseData) -> str:
    """This test's namespace ``hx-<run-id>-<test>`` (labelled; deleted at the end)."""
    return _hx_case.namespace


@pytest.fixture
def deploy_isvc(_hx_case: CaseData) -> Callable[..., Deployed]:
    """``deploy_isvc("cpu-small", patch={...}, annotations={...})``: apply a reference
    InferenceService (a name in ``fixtures/isvc/``, a path or a mapping) into the test's
    namespace and wait until Ready."""
    return _hx_case.deploy


@pytest.fixture
def load(_hx_case: CaseData) -> Callable[..., LoadResult]:
    """``load("suites/burst", isvc)``: play a load profile through the ingress (Locust in
    a child process); its records join the test's report."""
    return _hx_case.load


class Timeline:
    """The test's recorded timeline and verdicts (the ``timeline`` fixture)."""

    def __init__(self, case: CaseData) -> None:
        self.case = case

    def start(self) -> Timeline:
        """Start watching the namespace (pods, PodAutoscalers, Revisions, events)."""
        self.case.start_recording()
        return self

    def wait(self, predicate: Callable[[Frames], bool], *, until: Wait | None = None,
             timeout: float | None = None, what: str | None = None,
             isvc: Deployed | None = None, since: float | None = None,
             then: float = 0.0) -> float | None:
        """Wait until ``predicate(frames so far)`` holds, then keep recording ``then``
        seconds more (so what follows the event is on the timeline too, e.g. the reference
        band around it); seconds waited until it held, or None when it did not.

        ``until``: the suite's planned wait (:mod:`harness.suite.plan`), whose deadline
        is the reference model's time of the event plus its budget, counted from
        ``since`` (epoch; default: the start of the last load when the wait counts from
        the load's start, else now). A wait that runs out does not raise: the test's
        verdict fails with what was not reached, and the check still runs on what was
        recorded."""
        expected = ""
        if until is not None:
            timeout = until.deadline_s
            what = what or until.what
            shown = f"{until.expected} " if until.expected is not None else ""
            expected = (f"{shown}expected by {until.deadline_s:.0f} s after {until.anchor} "
                        f"(model {until.model_s:g} s + {until.budget.total:g} s budget)")
            if since is None and "load" in until.anchor and self.case.load_started:
                since = self.case.load_started[-1]
        if timeout is None or what is None:
            raise TypeError("wait() needs until=Wait, or timeout= and what=")
        took = self.case.wait(predicate, timeout=timeout, what=what, target=isvc,
                              expected=expected or f"expected within {timeout:.0f} s",
                              since=since)
        if took is not None and then > 0:
            time.sleep(then)
        return took

    def hold(self, until: Wait, *, since: float | None = None,
             isvc: Deployed | None = None) -> None:
        """Keep recording until ``until``'s deadline (counted like :meth:`wait`), e.g. past
        the time a service without minReplicas would have reached zero."""
        if since is None and "load" in until.anchor and self.case.load_started:
            since = self.case.load_started[-1]
        start = time.time() if since is None else since
        left = start + until.deadline_s - time.time()
        self.case.set_phase(f"holds past {until.what}", expected_s=max(0.0, left),
                            target=isvc)
        try:
            if left > 0:
                time.sleep(left)
        finally:
            self.case.set_phase("")

    def frames(self, isvc: Deployed | None = None) -> Frames:
        """Stop recording and build the frames (of ``isvc``'s revision when given)."""
        return self.case.build_frames(isvc)

    def records(self) -> Any:
        return self.case.records()

    def note(self, **meta: Any) -> None:
        self.case.meta.update(meta)

    def attach(self, verdict: Verdict) -> Verdict:
        return self.case.attach(verdict)

    def check(self, *verdicts: Verdict) -> Verdict:
        """Attach every verdict to the report (a wait that ran out fails them, saying
        what was not reached), then assert that each passed; the last one is returned."""
        from harness.suite.case import describe

        kept = [self.case.attach(v) for v in verdicts]
        bad = [v for v in kept if v.status != "pass"]
        assert not bad, "\n".join(describe(v) for v in bad)
        return kept[-1]


@pytest.fixture
def timeline(_hx_case: CaseData) -> Timeline:
    """The test's timeline recorder and verdict collector (see :class:`Timeline`)."""
    return Timeline(_hx_case)

