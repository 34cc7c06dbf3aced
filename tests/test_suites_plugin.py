"""The conformance suites' pytest plugin (:mod:`harness.suite.plugin`), run with pytester:
markers skipped unless selected, option errors, and on an in-process emulator the
per-test namespace (labelled, deleted, kept on failure when asked), a deployed
InferenceService with its recorded timeline, verdicts attached to the run report, and a
verdict's text as the failure message."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ("pytester",)

PLUGIN = ("-p", "harness.suite.plugin", "-p", "no:cacheprovider")

MARKED = """
import pytest

def test_plain():
    pass

@pytest.mark.slow
def test_needs_real_durations():
    pass

@pytest.mark.gpu
def test_needs_gpus():
    pass
"""


def test_slow_and_gpu_are_skipped_unless_selected(pytester):
    pytester.makepyfile(test_marked=MARKED)
    res = pytester.runpytest_subprocess(*PLUGIN, "--cluster", "current", "-rs")
    res.assert_outcomes(passed=1, skipped=2)
    res.stdout.fnmatch_lines(["*slow: needs the profile's real durations*",
                              "*gpu: needs GPU nodes*"])
    # the emulator has (fake) GPU nodes: gpu tests run there
    pytester.runpytest_subprocess(*PLUGIN, "--cluster", "local").assert_outcomes(
        passed=2, skipped=1)
    pytester.runpytest_subprocess(*PLUGIN, "--cluster", "current", "-m", "slow or gpu"
                                  ).assert_outcomes(passed=2, deselected=1)


def test_bad_options_are_usage_errors(pytester):
    pytester.makepyfile(test_marked=MARKED)
    res = pytester.runpytest_subprocess(*PLUGIN, "--cluster", "nowhere")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*--cluster must be local, kind, current or upstream*"])
    res = pytester.runpytest_subprocess(*PLUGIN, "--run-id", "Bad_Id")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*run id 'Bad_Id'*"])


LIFECYCLE = """
import pytest

from harness.checks.verdict import Verdict
from harness.kube.namespaces import run_namespaces
from harness.suite.predicates import pods_now

SEEN = {}


def test_a_passes(cluster, namespace, run_id, deploy_isvc, timeline):
    SEEN["passed"] = namespace
    assert namespace.startswith(f"hx-{run_id}-")
    labels = {ns["metadata"]["name"]: ns["metadata"]["labels"]
              for ns in run_namespaces(cluster.kube, run_id)}
    assert labels[namespace]["harness.kserve.dev/run-id"] == run_id
    timeline.start()
    isvc = deploy_isvc("fixed-scale")
    assert isvc.host == f"fixed-scale-predictor.{namespace}.example.com"
    assert isvc.params.params.min_scale == 2
    timeline.wait(lambda f: pods_now(f) == 2, timeout=30, what="two pods", isvc=isvc)
    frames = timeline.frames(isvc)
    assert len(frames.pods) == 2
    timeline.check(Verdict("demo", "two pods run", "test", "pass", "2", "2"))


def test_b_fails(namespace, timeline):
    SEEN["failed"] = namespace
    timeline.check(Verdict("demo", "the claim", "claims.demo", "fail", "by 5 s",
                           "after 9 s", why="too late"))


def test_c_after(cluster, run_id):
    states = {ns["metadata"]["name"]: bool(ns["metadata"].get("deletionTimestamp"))
              for ns in run_namespaces(cluster.kube, run_id)}
    assert states.get(SEEN["passed"], True), "a passed test's namespace must go"
    assert states[SEEN["failed"]] is False, "--keep-on-failure keeps a failed one"
"""


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_namespaces_timeline_verdicts_and_report_on_the_emulator(pytester, tmp_path):
    pytester.makepyfile(test_lifecycle=LIFECYCLE)
    reports = tmp_path / "reports"
    res = pytester.runpytest_subprocess(*PLUGIN, "--cluster", "local", "--profile", "fast",
                                        "--run-id", "01010000-abcd", "--keep-on-failure",
                                        "--report-dir", str(reports), timeout=150)
    res.assert_outcomes(passed=2, failed=1)
    # the verdict's text is the failure message
    res.stdout.fnmatch_lines(["*demo: FAIL: the claim [[]claims.demo]*",
                              "*expected: by 5 s*", "*observed: after 9 s*", "*why: too late*"])
    res.stdout.fnmatch_lines(["*harness: kept namespace hx-01010000-abcd-lifecycle-b-fails*",
                              "*harness: report*index.html*"])
    run_dir = reports / "01010000-abcd"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["counts"] == {"fail": 1, "inconclusive": 0, "pass": 1, "skip": 0}
    assert {v["case"]: v["status"] for v in summary["verdicts"]} == {
        "lifecycle-a_passes": "pass", "lifecycle-b_fails": "fail"}
    assert summary["meta"]["kept_namespaces"] == ["hx-01010000-abcd-lifecycle-b-fails"]
    assert summary["meta"]["profile"] == "fast"
    pods = (run_dir / "cases" / "lifecycle-a_passes" / "pods.csv").read_text()
    assert pods.count("fixed-scale-predictor-00001-deployment-") == 2
    assert (run_dir / "01010000-abcd.tar.gz").is_file()
    # without --junitxml, pytest's JUnit XML goes into the bundle
    junit = (run_dir / "junit.xml").read_text()
    assert 'tests="3"' in junit and 'failures="1"' in junit
    assert not (run_dir / ".parts").exists()


TIMED = """
import pytest

@pytest.mark.needs_time(lambda p: p.stable_window * 10)
def test_ten_stable_windows():
    pass
"""


def test_needs_time_over_the_limit_is_slow(pytester):
    pytester.makepyfile(test_timed=TIMED)
    # fast: 60 s, under the default limit of 180 s
    pytester.runpytest_subprocess(*PLUGIN, "--profile", "fast").assert_outcomes(passed=1)
    # coreweave: 1800 s, slow: skipped, with the duration said
    res = pytester.runpytest_subprocess(*PLUGIN, "--profile", "coreweave", "-rs")
    res.assert_outcomes(skipped=1)
    res.stdout.fnmatch_lines(["*slow: *needs about 1800 s with this profile*"])
    # selected with -m slow; a lower limit makes the fast profile's test slow too
    res = pytester.runpytest_subprocess(*PLUGIN, "--profile", "coreweave", "-m", "slow",
                                        "--collect-only", "-q")
    res.stdout.fnmatch_lines(["*test_ten_stable_windows*"])
    pytester.runpytest_subprocess(*PLUGIN, "--profile", "fast", "--slow-after", "30"
                                  ).assert_outcomes(skipped=1)


NEEDS_CLUSTER = """
def test_uses_the_cluster(cluster):
    pass
"""


def test_a_cluster_without_kserve_skips_with_the_reason(pytester, tmp_path):
    from harness.emulator import BUILTIN_RESOURCES, Emulator, Registry, Store

    pytester.makepyfile(test_needs_cluster=NEEDS_CLUSTER)
    registry = Registry(types=[t for t in BUILTIN_RESOURCES if t.group != "serving.kserve.io"])
    with Emulator(store=Store(registry=registry)) as bare:
        kubeconfig = bare.write_kubeconfig(tmp_path / "kubeconfig")
        res = pytester.runpytest_subprocess(
            *PLUGIN, "--cluster", "current", "--kubeconfig", str(kubeconfig),
            "--allowed-contexts", "harness-local", "--ingress-url", "http://127.0.0.1:9",
            "--report-dir", str(tmp_path / "reports"), "-rs", timeout=120)
    res.assert_outcomes(skipped=1)
    res.stdout.fnmatch_lines(["*KServe is not installed (missing CRD "
                              "inferenceservices.serving.kserve.io)*"])
