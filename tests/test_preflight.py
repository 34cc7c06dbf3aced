"""The preflight of ``--cluster current``/``kind`` (:mod:`harness.suite.preflight`) on the
emulator: one line per unmet precondition (what is wrong, which suites it stops, the
exact fix), nothing written to the cluster; a suite that cannot run is skipped with that
line while the others run; and on ``current`` the runtime goes into each test namespace.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.emulator.local_cluster import LocalCluster
from harness.prerequisites import FEATURES
from harness.suite.preflight import run_preflight, suites_using
from harness.suite.target import open_cluster

ROOT = Path(__file__).resolve().parent.parent
NODESELECTOR_SUITES = ("autoscaling, cold_start, configuration, no_request_lost, panic, "
                       "scale_down, scale_to_zero, scale_up_rate")
FIX = "kubectl -n knative-serving patch configmap"


def _open(cluster: LocalCluster, tmp_path: Path, mode: str = "current"):
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    return open_cluster(mode=mode, profile="fast", run_id="01010000-pref",
                        kubeconfig=str(kubeconfig), context="harness-local",
                        allowed=["harness-local"])


def test_suites_are_mapped_to_the_fixtures_they_deploy() -> None:
    users = suites_using()
    assert users["gpu-rtx5000"] == ["gpu_placement"]
    assert ", ".join(sorted(users["cpu-small"])) == NODESELECTOR_SUITES
    assert users["fixed-scale"] == ["autoscaling"]


def test_a_cluster_as_the_kind_bring_up_leaves_it_has_nothing_unmet(tmp_path: Path) -> None:
    with LocalCluster(profile="fast") as cluster:
        handle = _open(cluster, tmp_path, "kind")
        try:
            pf = run_preflight(handle.kube, "kind", gateway=handle.gateway)
        finally:
            handle.close()
    assert pf.lines() == []
    assert pf.runtimes == ["harness-linear"] and pf.metrics_protocol == "prometheus"


def test_each_unmet_precondition_is_one_line_and_nothing_is_written(tmp_path: Path) -> None:
    with LocalCluster(profile="fast", runtime=False,
                      features={flag: "disabled" for flag in FEATURES},
                      observability={}) as cluster:
        handle = _open(cluster, tmp_path, "kind")
        try:
            before = cluster.store.resource_version
            pf = run_preflight(handle.kube, "kind", gateway=handle.gateway)
            assert cluster.store.resource_version == before  # reads only
        finally:
            handle.close()
    lines = pf.lines()
    assert lines == [
        "preflight: config-features kubernetes.podspec-nodeselector is disabled: Knative's "
        "webhook refuses spec.template.spec.nodeSelector; stops " + NODESELECTOR_SUITES +
        f"; fix: {FIX} config-features --type merge -p "
        "'{\"data\":{\"kubernetes.podspec-nodeselector\":\"enabled\"}}'",
        "preflight: config-features kubernetes.podspec-affinity is disabled: Knative's "
        "webhook refuses spec.template.spec.affinity; stops gpu_placement; fix: "
        f"{FIX} config-features --type merge -p "
        "'{\"data\":{\"kubernetes.podspec-affinity\":\"enabled\"}}'",
        "preflight: config-features kubernetes.podspec-tolerations is disabled: Knative's "
        "webhook refuses spec.template.spec.tolerations; stops gpu_placement; fix: "
        f"{FIX} config-features --type merge -p "
        "'{\"data\":{\"kubernetes.podspec-tolerations\":\"enabled\"}}'",
        "preflight: no ClusterServingRuntime supports modelFormat harness-linear (KServe: "
        "\"no runtime found to support predictor with model type: {harness-linear <nil>}\")"
        "; stops " + NODESELECTOR_SUITES + "; fix: kubectl apply -f "
        "fixtures/runtimes/harness-linear.yaml",
        "preflight: config-observability metrics-protocol is none (Knative 1.19+ default "
        "none): the autoscaler exports no kn_revision_panic_mode, panic is inferred from "
        "the trajectory; stops no suite; fix: "
        f"{FIX} config-observability --type merge -p "
        "'{\"data\":{\"metrics-protocol\":\"prometheus\"}}' && kubectl -n knative-serving "
        "rollout restart deployment/autoscaler",
    ]
    cpu = yaml.safe_load((ROOT / "fixtures" / "isvc" / "cpu-small.yaml").read_text())
    gpu = yaml.safe_load((ROOT / "fixtures" / "isvc" / "gpu-rtx5000.yaml").read_text())
    assert pf.blocks(cpu) == lines[0]
    assert pf.blocks(gpu) == lines[1]
    assert pf.blocks({"spec": {"predictor": {"containers": [{"image": "x"}]}}}) is None


def test_on_current_the_runtime_needs_only_its_crd(tmp_path: Path) -> None:
    with LocalCluster(profile="fast", runtime=False) as cluster:
        handle = _open(cluster, tmp_path)
        try:
            pf = run_preflight(handle.kube, "current", gateway=handle.gateway)
        finally:
            handle.close()
    assert pf.lines() == []
    assert pf.runtimes == ["harness-linear (ServingRuntime in each test namespace)"]


def test_an_ingress_class_without_its_gateway_stops_every_suite(tmp_path: Path) -> None:
    with LocalCluster(profile="fast") as cluster:
        cm = cluster.store.get("configmaps", "config-network", namespace="knative-serving")
        cm["data"] = {"ingress-class": "contour.ingress.networking.knative.dev"}
        cluster.store.update("configmaps", cm, namespace="knative-serving")
        handle = _open(cluster, tmp_path)
        try:
            pf = run_preflight(handle.kube, "current", gateway=handle.gateway)
        finally:
            handle.close()
    (line,) = pf.lines()
    assert line.startswith("preflight: config-network ingress-class is "
                           "'contour.ingress.networking.knative.dev', but the ingress found "
                           "is kourier; stops every suite; fix: ")
    assert pf.blocks({"spec": {}}) == line


SUITE = """
def test_needs_nodeselector(deploy_isvc):
    deploy_isvc("cpu-small")


def test_needs_none(cluster, namespace, deploy_isvc, timeline):
    timeline.start()
    isvc = deploy_isvc("fixed-scale")
    timeline.frames(isvc)
    runtimes = cluster.kube.request(
        "GET", f"/apis/serving.kserve.io/v1alpha1/namespaces/{namespace}/servingruntimes")
    assert [r["metadata"]["name"] for r in runtimes["items"]] == ["harness-linear"]
    assert isvc.status["servingRuntimeName"] == "harness-linear"
"""


@pytest.mark.timeout(180)
def test_a_suite_that_cannot_run_is_skipped_with_the_line_and_the_others_run(
        pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile(test_prefl=SUITE)
    features = dict(FEATURES, **{"kubernetes.podspec-nodeselector": "disabled"})
    with LocalCluster(profile="fast", runtime=False, features=features,
                      observability={"metrics-protocol": "none"}) as cluster:
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        res = pytester.runpytest_subprocess(
            "-p", "harness.suite.plugin", "-p", "no:cacheprovider", "--cluster", "current",
            "--kubeconfig", str(kubeconfig), "--allowed-contexts", "harness-local",
            "--report-dir", str(tmp_path / "reports"), "--run-id", "01010000-pfl1", "-rs",
            timeout=150)
    res.assert_outcomes(passed=1, skipped=1)
    line = ("preflight: config-features kubernetes.podspec-nodeselector is disabled: "
            "Knative's webhook refuses spec.template.spec.nodeSelector; stops "
            + NODESELECTOR_SUITES)
    res.stdout.fnmatch_lines([f"SKIPPED*{line}*"])
    res.stdout.fnmatch_lines([f"harness {line}*"])  # the run summary repeats it
    # no autoscaler metrics: said once, in the run summary
    note = ("harness: panic gauge unavailable (metrics-protocol none): panic inferred from "
            "the trajectory")
    assert res.stdout.str().count(note) == 1
    summary = json.loads((tmp_path / "reports" / "01010000-pfl1" / "summary.json"
                          ).read_text())
    assert summary["meta"]["preflight"][0].startswith(line)
    assert summary["meta"]["configuration"]["cluster"] == {
        "serving_runtime": "ServingRuntime/harness-linear",
        "kubernetes.podspec-nodeselector": "disabled",
        "kubernetes.podspec-affinity": "enabled",
        "kubernetes.podspec-tolerations": "enabled", "metrics-protocol": "none"}


pytest_plugins = ("pytester",)


def test_a_refused_isvc_times_out_with_kserves_and_knatives_words(tmp_path: Path) -> None:
    """Where a wait for Ready runs out, it says why in upstream's words: no runtime
    (KServe's lastFailureInfo), or the Knative webhook's refusal (PredictorReady)."""
    from harness.kube.wait import WaitTimeout, wait_isvc_ready

    cpu = yaml.safe_load((ROOT / "fixtures" / "isvc" / "cpu-small.yaml").read_text())
    with LocalCluster(profile="fast", runtime=False,
                      features={flag: "disabled" for flag in FEATURES}) as cluster:
        cluster.store.create("serving.kserve.io/inferenceservices", cpu, namespace="default")
        gpu = yaml.safe_load((ROOT / "fixtures" / "isvc" / "gpu-rtx5000.yaml").read_text())
        cluster.store.create("serving.kserve.io/inferenceservices", gpu, namespace="default")
        handle = _open(cluster, tmp_path)
        try:
            with pytest.raises(WaitTimeout) as exc:
                wait_isvc_ready(handle.kube, "cpu-small", "default", timeout=2)
            assert str(exc.value).endswith(
                "model: NoSupportingRuntime: No runtime found to support specified "
                "framework/version")
            with pytest.raises(WaitTimeout) as exc:
                wait_isvc_ready(handle.kube, "gpu-rtx5000", "default", timeout=2)
            assert str(exc.value).endswith(
                "PredictorReady message 'admission webhook \"validation.webhook.serving."
                "knative.dev\" denied the request: validation failed: must not set the "
                "field(s): spec.template.spec.affinity, spec.template.spec.tolerations'")
        finally:
            handle.close()
