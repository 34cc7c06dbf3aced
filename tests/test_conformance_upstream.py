"""``harness conformance --cluster upstream`` without a live cluster: the report names the
cluster and every component's version (summary.json, index.html, junit.xml properties),
from a recorded ``go version -m`` reading of the build and the API server's ``/version``;
the host's one upstream-cluster slot (waited for, then refused in one line); the cluster
that cannot start (one line, exit 2, its log kept). The live run is ``make conformance
CLUSTER=upstream`` (and ``.ci/run``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.kube.safety import UPSTREAM_CONTEXT, Guard
from harness.suite.cluster_info import junit_properties, read_info, upstream_info
from harness.upstream import build
from harness.upstream.control_plane import CONTEXT

pytest_plugins = ("pytester",)

FIXTURES = Path(__file__).parent / "fixtures" / "upstream"
BUILT = json.loads((FIXTURES / "component_versions.json").read_text())
SERVED = json.loads((FIXTURES / "version.json").read_text())
PLUGIN = ("-p", "harness.suite.plugin", "-p", "no:cacheprovider")


def _commits() -> dict[str, str]:
    return {m: str(e.get("commit") or "") for m, e in build.load_versions()["modules"].items()}


def test_upstream_info_lists_every_component_with_its_version() -> None:
    info = upstream_info(SERVED, BUILT, commits=_commits())
    assert info["kind"] == "upstream"
    rows = {r["component"]: r for r in info["components"]}
    assert len(info["components"]) == 1 + len(BUILT)
    assert rows["kubernetes (/version)"]["version"] == "v1.34.0"
    assert rows["kubernetes (/version)"]["commit"] == ""   # "$Format:%H$" is no commit
    for b in ("etcd", "coredns", "kube-apiserver", "kube-controller-manager",
              "kube-scheduler", "kube-proxy", "kserve-manager"):
        assert rows[b]["version"] == next(x["version"] for x in BUILT if x["binary"] == b)
    assert rows["etcd"]["version"] == "v3.6.4" and rows["coredns"]["version"] == "v1.12.1"
    assert rows["kserve-manager"] == {"component": "kserve-manager",
                                      "module": "github.com/kserve/kserve",
                                      "version": "v0.20.0", "release": "v0.20.0",
                                      "commit": ""}
    for b in ("knative-controller", "knative-autoscaler", "knative-activator",
              "knative-webhook", "knative-queue"):
        assert rows[b]["module"] == "knative.dev/serving"
        assert (rows[b]["version"], rows[b]["release"], rows[b]["commit"]) == (
            "v0.48.1", "v1.21.1", "69aa052")


def test_junit_properties_name_the_cluster_and_each_component() -> None:
    props = dict(junit_properties("upstream", upstream_info(SERVED, BUILT,
                                                            commits=_commits())))
    assert props["cluster"] == "upstream"
    assert props["component.knative-autoscaler"] == (
        "v0.48.1 (knative.dev/serving, release v1.21.1, commit 69aa052)")
    assert props["component.kube-apiserver"] == "v1.34.0 (k8s.io/kubernetes)"
    assert props["component.kserve-manager"] == "v0.20.0 (github.com/kserve/kserve)"
    assert junit_properties("local", None) == [("cluster", "local")]


def test_the_guard_writes_only_to_the_upstream_clusters_own_context() -> None:
    assert UPSTREAM_CONTEXT == CONTEXT  # the context cluster up --upstream's kubeconfig has
    assert Guard(CONTEXT, mode="upstream").context_allowed
    assert not Guard("production", mode="upstream").context_allowed
    assert Guard("production", mode="upstream", allowed=["production"]).context_allowed


A_CASE = """
from harness.checks.verdict import Verdict
from harness.observe.frames import (Frames, PANIC_COLUMNS, POD_COLUMNS, READY_COLUMNS,
                                    SCALE_COLUMNS, SCHEDULING_COLUMNS, empty)
from harness.report.bundle import Case
from harness.suite.case import PARTS
from harness.suite.schedule import run_dir_of
import pickle


def test_leaves_a_case(request):
    frames = Frames(empty(POD_COLUMNS), empty(READY_COLUMNS), empty(SCALE_COLUMNS),
                    empty(PANIC_COLUMNS), empty(SCHEDULING_COLUMNS), 0.0, 1.0)
    case = Case("one", frames, [Verdict("panic-entry", "claim", "key", "pass", "e", "o")])
    parts = run_dir_of(request.config) / PARTS
    parts.mkdir(parents=True, exist_ok=True)
    (parts / "one.pkl").write_bytes(pickle.dumps(case))
"""


def test_the_report_names_the_upstream_cluster_and_its_versions(pytester, tmp_path) -> None:
    info_file = tmp_path / "cluster-info.json"
    info_file.write_text(json.dumps(upstream_info(SERVED, BUILT, commits=_commits())))
    pytester.makepyfile(test_case=A_CASE)
    reports = tmp_path / "reports"
    res = pytester.runpytest_subprocess(
        *PLUGIN, "--cluster", "upstream", "--cluster-info", str(info_file),
        "--report-dir", str(reports), "--run-id", "01010000-up01")
    res.assert_outcomes(passed=1)
    run = reports / "01010000-up01"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["meta"]["cluster"] == "upstream"
    shown = {r["component"]: r["version"] for r in summary["meta"]["components"]}
    assert shown["knative-autoscaler"] == "v0.48.1" and shown["kserve-manager"] == "v0.20.0"
    assert shown["kubernetes (/version)"] == "v1.34.0" and len(shown) == 1 + len(BUILT)
    page = (run / "index.html").read_text()
    assert "cluster: upstream" in page
    for row in BUILT:
        assert row["binary"] in page
    assert "69aa052" in page and "v1.21.1" in page
    props = {p.get("name"): p.get("value")
             for p in ET.parse(run / "junit.xml").getroot().iter("property")}
    assert props["cluster"] == "upstream"
    assert props["component.knative-queue"] == (
        "v0.48.1 (knative.dev/serving, release v1.21.1, commit 69aa052)")
    assert props["component.etcd"] == "v3.6.4 (go.etcd.io/etcd/server/v3)"
    # another cluster kind is named too, without components
    res = pytester.runpytest_subprocess(*PLUGIN, "--cluster", "current",
                                        "--report-dir", str(reports),
                                        "--run-id", "01010000-cur1")
    res.assert_outcomes(passed=1)
    props = {p.get("name"): p.get("value") for p in
             ET.parse(reports / "01010000-cur1" / "junit.xml").getroot().iter("property")}
    assert props == {"cluster": "current"}
    meta = json.loads((reports / "01010000-cur1" / "summary.json").read_text())["meta"]
    assert meta["cluster"] == "current" and "components" not in meta


def test_a_bad_cluster_info_file_is_a_usage_error(pytester, tmp_path) -> None:
    pytester.makepyfile(test_case="def test_x():\n    pass\n")
    bad = tmp_path / "info.json"
    bad.write_text("{not json")
    res = pytester.runpytest_subprocess(*PLUGIN, "--cluster-info", str(bad))
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*--cluster-info: *info.json: the cluster info is not JSON*"])
    with pytest.raises(Exception, match="cannot read the cluster info"):
        read_info(tmp_path / "missing.json")


def _conformance(tmp_path: Path, env: dict[str, str], *args: str,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", "conformance", "--cluster",
                           "upstream", "--report-dir", str(tmp_path / "reports"), *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env})


@pytest.mark.skipif(os.geteuid() != 0 or not sys.platform.startswith("linux"),
                    reason="the refusals after the host check need root on Linux")
def test_the_host_slot_held_by_another_cluster_is_waited_for_then_refused(tmp_path) -> None:
    # held by a process that did not start this conformance run (an ancestor holding it
    # would mean the run is inside its slot: harness.upstream.hostlock)
    lock = tmp_path / "upstream.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys\n"
                               "f = open(sys.argv[1], 'a')\nfcntl.flock(f, fcntl.LOCK_EX)\n"
                               "print('held', flush=True)\nsys.stdin.read()", str(lock)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        res = _conformance(tmp_path, {"HARNESS_UPSTREAM_LOCK": str(lock),
                                      "HARNESS_UPSTREAM_LOCK_WAIT": "1"},
                           "--run-id", "01010000-lock")
    finally:
        holder.kill()
        holder.wait()
    assert res.returncode == 2, res.stdout + res.stderr
    assert (f"waiting up to 1 s for the host's upstream-cluster slot ({lock}): another "
            f"upstream cluster holds it (pid {holder.pid}: ") in res.stdout
    errors = res.stderr.strip().splitlines()
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"harness conformance: error: another upstream cluster held "
                                f"the host's slot ({lock}) for 1 s (pid {holder.pid}: ")
    assert errors[0].endswith("; one upstream cluster runs per host (wait longer with "
                              "HARNESS_UPSTREAM_LOCK_WAIT)")
    assert not (tmp_path / "reports" / "01010000-lock").exists()   # nothing half-made


@pytest.mark.skipif(os.geteuid() != 0 or not sys.platform.startswith("linux"),
                    reason="the refusals after the host check need root on Linux")
def test_a_cluster_that_cannot_start_is_one_line_and_exit_2(tmp_path) -> None:
    # no Go on PATH: 'harness cluster up --upstream' stops before it creates anything
    # (or, when another session's cluster runs on this host, at its bridge): either way
    # the child's error line, its log kept in the report folder
    res = _conformance(tmp_path, {"HARNESS_UPSTREAM_LOCK": str(tmp_path / "upstream.lock"),
                                  "PATH": "/usr/sbin:/usr/bin:/bin:/sbin",
                                  "XDG_CACHE_HOME": str(tmp_path / "cache")},
                       "--run-id", "01010000-nogo")
    assert res.returncode == 2, res.stdout + res.stderr
    errors = res.stderr.strip().splitlines()
    assert len(errors) == 1, errors
    assert errors[0].startswith("harness conformance: error: the upstream cluster did not "
                                "start (exited with code 2): harness cluster: error: ")
    assert ("needs a Go toolchain" in errors[0]
            or "another upstream cluster is running" in errors[0])
    log = tmp_path / "reports" / "01010000-nogo" / "cluster.log"
    assert f"(log: {log})" in errors[0] and log.is_file()


def test_non_root_is_refused_before_anything(monkeypatch, tmp_path, capsys) -> None:
    from harness.cli import main

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.chdir(tmp_path)
    assert main(["conformance", "--cluster", "upstream", "--run-id", "01010000-user"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    if sys.platform.startswith("linux"):
        assert err == ["harness conformance: error: the upstream cluster needs root (it "
                       "creates network namespaces, links and routes for its pods); run it "
                       "as root"]
    assert not (tmp_path / "reports").exists()


def test_the_childs_error_line_with_its_first_detail(tmp_path) -> None:
    from harness.commands.conformance import _error_line

    log = tmp_path / "cluster.log"
    log.write_text("harness cluster: Knative webhook Ready ...\n"
                   "harness cluster: error: Deployment knative-serving/webhook did not become "
                   "ready within 180 s:\npod webhook-1: Pending; CrashLoopBackOff\n--- log:\nx\n")
    assert _error_line(log) == ("harness cluster: error: Deployment knative-serving/webhook "
                                "did not become ready within 180 s: pod webhook-1: Pending; "
                                "CrashLoopBackOff")
    log.write_text("something\nlast words\n")
    assert _error_line(log) == "last words"
