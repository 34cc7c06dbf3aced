"""The conformance job: reference-model predictions, and ``harness conformance`` end to end
on the emulator (cluster child, suites through pytest, report, exit codes, clean-up)."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.commands import conformance
from harness.predictions import predict
from harness.profiles import load_profile
from harness.resolve import resolve


def _harness(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _by_measure(profile: str) -> dict[str, float | None]:
    return {p.measure: p.value for p in predict(resolve(profile=profile).params)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_coreweave_predictions_match_the_worked_examples():
    got = _by_measure("coreweave")
    # knative-kpa.md §11(b): with the 60 s delay, 9 pods at ~76 s, decider 0 at ~616 s.
    assert got["first pod of 10 removed"] == pytest.approx(76, abs=2)
    assert got["largest step down (pods)"] == 1
    assert got["decider says 0"] == pytest.approx(616, abs=2)
    # §11(d): one pod reaches zero ~2040 s (34 min) after traffic stops.
    assert got["replicas reach 0 (from 1 pod)"] == pytest.approx(2040, abs=4)
    # §11(c): one in-flight request over target already panics on the first tick.
    assert got["panic starts"] == 2


def test_fast_profile_reaches_zero_in_about_fifteen_seconds():
    got = _by_measure("fast")
    # 6 s stable window + 4 s delay + 5 s retention, to within the 2 s tick.
    assert 12 <= got["replicas reach 0 (from 1 pod)"] <= 17


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_conformance_runs_the_suites_on_the_emulator_and_writes_the_report(tmp_path):
    res = _harness("conformance", "--profile", "fast", "--report-dir", str(tmp_path),
                   "--workers", "2", "--progress-every", "1", "--", "-k", "configuration",
                   cwd=tmp_path, timeout=200)
    out = " ".join(res.stdout.split())
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["meta"]["cluster_tested"] is True
    assert summary["meta"]["profile"] == "fast"
    assert summary["meta"]["leaks"] == []
    assert summary["counts"] == {"fail": 0, "inconclusive": 0, "pass": 2, "skip": 0}
    assert [v["check"] for v in summary["verdicts"]] == ["configuration", "documentation"]
    # not a terminal: the running suite's progress as plain lines, on lines of their own
    progress = [ln for ln in res.stdout.splitlines() if ln.startswith("progress ")]
    assert any("configuration-effective_knobs_match_the_profile: " in ln
               and " | ready " in ln for ln in progress), res.stdout[-3000:]
    # the report's header: each suite's time against its expected time
    case = summary["cases"]["configuration-effective_knobs_match_the_profile"]
    assert case["took_s"] > 0 and case["expected_s"] > 0
    assert "took / expected" in (run_dir / "index.html").read_text()
    assert re.search(r"harness: configuration-effective_knobs_match_the_profile took \S+ "
                     r"\(\S+ expected\), passed", out), out[-3000:]
    # the configuration part of the report: the model's predictions and the findings
    config = summary["meta"]["configuration"]
    assert {p["scenario"] for p in config["predictions"]} == {"burst", "scale-down",
                                                              "scale-to-zero"}
    assert config["findings"] == []
    junit = (run_dir / "junit.xml").read_text()
    assert 'tests="1"' in junit and "test_effective_knobs_match_the_profile" in junit
    assert (run_dir / "index.html").is_file()
    assert (run_dir / f"{run_dir.name}.tar.gz").is_file()
    assert not (run_dir / ".parts").exists()
    assert f"Report: {run_dir / 'index.html'}" in out
    # the emulator it started is gone
    pid = int(re.search(r"Cluster: emulated \(pid (\d+)\)", out).group(1))
    assert "Cluster: stopped" in out
    assert not _alive(pid)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_conformance_fails_when_the_documentation_cannot_hold(tmp_path):
    # the coreweave page without its acknowledgements: the documentation verdict fails,
    # the configuration verdict (the cluster runs every documented knob) passes
    doc = yaml.safe_load(load_profile("coreweave").path.read_text())
    doc.pop("acknowledged")
    page = tmp_path / "page.yaml"
    page.write_text(yaml.safe_dump(doc))
    reports = tmp_path / "reports"
    res = _harness("conformance", "--profile", str(page), "--report-dir", str(reports),
                   "--workers", "0", "--", "-k", "configuration", cwd=tmp_path, timeout=200)
    assert res.returncode == 1, res.stdout[-4000:] + res.stderr[-2000:]
    assert "panic-window" in res.stdout
    (run_dir,) = [p for p in reports.iterdir() if p.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert {v["check"]: v["status"] for v in summary["verdicts"]} == {
        "configuration": "pass", "documentation": "fail"}


def test_conformance_bad_profile_is_one_line_and_exit_2(tmp_path):
    res = _harness("conformance", "--profile", "nope", "--report-dir", str(tmp_path), cwd=tmp_path)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1
    assert "nope" in res.stderr
    assert list(tmp_path.iterdir()) == []


def test_conformance_unreachable_cluster_is_one_line_and_exit_2(tmp_path):
    res = _harness("conformance", "--cluster", "current", "--kubeconfig",
                   str(tmp_path / "missing"), "--report-dir", str(tmp_path / "r"),
                   cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert "kubeconfig not found" in res.stderr
    assert not (tmp_path / "r").exists()


def test_conformance_bad_workers_and_run_id_exit_2(tmp_path):
    for extra in (["--workers", "many"], ["--run-id", "Not_Valid"]):
        res = _harness("conformance", "--report-dir", str(tmp_path), *extra, cwd=tmp_path)
        assert res.returncode == 2, (extra, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1


def _args(**kw):
    ns = argparse.Namespace(cluster="local", kube_context=None, allowed_contexts=None,
                            ingress_url=None, keep_on_failure=False, pytest_args=[])
    for k, v in kw.items():
        setattr(ns, k, v)
    return ns


def test_pytest_command_line(tmp_path):
    argv = conformance._pytest_argv(_args(), "fast", "01010000-abcd", tmp_path, "/k", 4)
    assert argv[1:4] == ["-m", "pytest", str(conformance.SUITES)]
    joined = " ".join(argv)
    assert "--cluster local" in joined and "--profile fast" in joined
    assert f"--junitxml {tmp_path / '01010000-abcd' / 'junit.xml'}" in joined
    assert "--kubeconfig /k" in joined and argv[-2:] == ["-n", "4"]
    # a worker count given to pytest wins; no workers at all with 0
    own = conformance._pytest_argv(_args(pytest_args=["-n", "1", "-k", "panic"]), "fast",
                                   "01010000-abcd", tmp_path, None, 4)
    assert own.count("-n") == 1 and own[-4:] == ["-n", "1", "-k", "panic"]
    assert "-n" not in conformance._pytest_argv(_args(), "fast", "r", tmp_path, None, 0)
    cur = conformance._pytest_argv(
        _args(cluster="current", allowed_contexts="a, b", keep_on_failure=True,
              ingress_url="http://gw"), "coreweave", "r", tmp_path, None, 0)
    assert "--allowed-contexts a,b" in " ".join(cur) and "--keep-on-failure" in cur
    assert "--ingress-url" in cur and "--kubeconfig" not in cur


def test_exit_codes_from_pytest():
    assert [conformance._exit_code(rc) for rc in (0, 1, 2, 3, 4, 5)] == [0, 1, 130, 2, 2, 2]


def test_planned_workers_come_from_the_suites_expected_times(tmp_path):
    from rich.console import Console

    console = Console(record=True, width=200)
    args = _args(pytest_args=["-m", "slow or not slow"])
    n = conformance._planned_workers(args, "coreweave", tmp_path, console)
    shown = console.export_text()
    # four suites of about 35 minutes each, and the rest: a fifth worker keeps the run
    # about as long as the longest suite
    assert n == 5, shown
    assert re.search(r"Plan: 13 tests, longest 3\dm\d+s, 5 workers, longest first: about "
                     r"3\dm\d+s", shown), shown
    # the user's -n wins; without slow suites the default four suffice
    assert conformance._planned_workers(_args(pytest_args=["-n", "2"]), "coreweave",
                                        tmp_path, console) == 0
    assert conformance._planned_workers(_args(), "fast", tmp_path, console) >= 4


def _tagged(tag: str) -> dict[int, str]:
    """pid -> command line of every process whose environment carries ``tag``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if tag.encode() not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        if cmd and _alive(int(entry.name)):
            found[int(entry.name)] = cmd
    return found


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_conformance_killed_with_sigkill_leaves_no_process(tmp_path):
    """``kill -9`` of ``harness conformance`` while its suites run: the emulated cluster it
    started (own session) and pytest with its workers die with it (PR_SET_PDEATHSIG), and
    so do the emulator's pod processes; nothing of the run is left."""
    import signal
    import time
    import uuid

    tag = f"HARNESS_ORPHAN_TEST={uuid.uuid4().hex}"
    log = tmp_path / "conformance.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness", "conformance", "--profile", "fast",
             "--report-dir", str(tmp_path / "reports"), "--workers", "2",
             "--progress-every", "1", "--", "-k", "configuration"],
            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, tag.split("=")[0]: tag.split("=")[1]})
    try:
        deadline = time.monotonic() + 120
        while True:
            running = _tagged(tag)
            cluster = [p for p, c in running.items() if "cluster up --local" in c]
            workers = [p for p, c in running.items() if "xdist" in c or "execnet" in c
                       or "-c import sys;exec(eval(sys.stdin.readline()))" in c]
            if cluster and workers and "progress " in log.read_text(errors="replace"):
                break  # the cluster is up and a suite is running on a worker
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, (running, log.read_text()[-3000:])
            time.sleep(0.2)
        assert len(running) >= 4, running   # harness, the cluster, pytest, its workers
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        left = _tagged(tag)
        deadline = time.monotonic() + 20
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = _tagged(tag)
        assert left == {}, f"left running after kill -9 of harness conformance: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in _tagged(tag):   # only the processes this test started
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
