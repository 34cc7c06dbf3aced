"""Knative Serving's and KServe's objects as the upstream cluster installs them: read from
the Go module cache (``go mod download`` on first use, as the upstream build does), with
what the releases' tooling does to them (ko's images, version labels, kustomize's namespace,
labels and names) and the kind bring-up's settings. No cluster: the live install is in
``tests/upstream/test_serving_install.py``.

Needs Go (the module cache); like the oracle's tests it fails loudly without it, and
``HARNESS_SKIP_UPSTREAM=1`` skips it on purpose.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest

from harness.errors import UserError
from harness.prerequisites import FEATURES, OBSERVABILITY
from harness.upstream import modcache, serving

pytestmark = pytest.mark.skipif(os.environ.get("HARNESS_SKIP_UPSTREAM") == "1",
                                reason="HARNESS_SKIP_UPSTREAM=1: upstream's YAML skipped")

KNATIVE_CRDS = {
    "configurations.serving.knative.dev", "domainmappings.serving.knative.dev",
    "metrics.autoscaling.internal.knative.dev",
    "podautoscalers.autoscaling.internal.knative.dev", "revisions.serving.knative.dev",
    "routes.serving.knative.dev", "services.serving.knative.dev",
    "certificates.networking.internal.knative.dev",
    "clusterdomainclaims.networking.internal.knative.dev",
    "ingresses.networking.internal.knative.dev",
    "serverlessservices.networking.internal.knative.dev",
    "images.caching.internal.knative.dev"}
KSERVE_CRDS = {
    "inferenceservices.serving.kserve.io", "trainedmodels.serving.kserve.io",
    "clusterservingruntimes.serving.kserve.io", "servingruntimes.serving.kserve.io",
    "inferencegraphs.serving.kserve.io", "clusterstoragecontainers.serving.kserve.io"}


def names(docs: list[dict]) -> list[str]:
    return [d["metadata"]["name"] for d in docs]


def by(docs: list[dict], kind: str, name: str) -> dict:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


@pytest.fixture(scope="module")
def core() -> list[dict]:
    config = serving.knative_config(autoscaler={"stable-window": "60s",
                                                "panic-threshold-percentage": "200"})
    return serving.knative_core(config)


@pytest.fixture(scope="module")
def kserve() -> list[dict]:
    return serving.kserve_objects(b"-----BEGIN CERTIFICATE-----\nabc\n")


def test_module_cache_encoding() -> None:
    assert modcache.escape("github.com/Azure/go-Autorest") == "github.com/!azure/go-!autorest"
    assert modcache.escape("knative.dev/serving") == "knative.dev/serving"


def test_knative_modules_are_the_ones_serving_requires() -> None:
    mods = modcache.knative_modules()
    assert mods.serving.version == "v0.48.1"
    gomod = (mods.serving.dir / "go.mod").read_text()
    assert f"knative.dev/networking {mods.networking.version}" in gomod
    assert f"knative.dev/caching {mods.caching.version}" in gomod
    assert mods.networking.dir.name == f"networking@{mods.networking.version}"


def test_knative_crds_are_the_release_set() -> None:
    crds = modcache.knative_crds()
    assert set(names(crds)) == KNATIVE_CRDS and len(crds) == len(KNATIVE_CRDS)
    assert {(d["apiVersion"], d["kind"]) for d in crds} == {
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition")}
    ingress = modcache.networking_crds(["ingress.yaml"])
    assert names(ingress) == ["ingresses.networking.internal.knative.dev"]
    assert ingress[0]["spec"]["versions"][0]["name"] == "v1alpha1"


def test_kserve_crds_are_the_release_set() -> None:
    crds = modcache.kserve_crds()
    assert set(names(crds)) == KSERVE_CRDS
    assert all("creationTimestamp" not in d["metadata"] for d in crds)
    isvc = by(crds, "CustomResourceDefinition", "inferenceservices.serving.kserve.io")
    assert [v["name"] for v in isvc["spec"]["versions"]] == ["v1beta1"]


def test_a_missing_module_is_one_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOPROXY", "off")
    with pytest.raises(UserError) as err:
        modcache.module_dir("knative.dev/serving", "v0.0.0-20000101000000-000000000000")
    assert "cannot get Go module knative.dev/serving@v0.0.0-20000101000000-000000000000" \
        in str(err.value)
    assert "GOPROXY=off" in str(err.value)


def test_knative_core_is_config_core_in_ko_order(core: list[dict]) -> None:
    kinds = [d["kind"] for d in core]
    assert "CustomResourceDefinition" not in kinds        # serving-crds.yaml goes first
    assert core[0]["kind"] == "Namespace" and core[0]["metadata"]["name"] == "knative-serving"
    # 200-roles, 200-serviceaccount, ..., configmaps/, deployments/, webhooks/
    assert kinds.index("ClusterRole") < kinds.index("ConfigMap") < kinds.index("Deployment") \
        < kinds.index("ValidatingWebhookConfiguration")
    cms = [d["metadata"]["name"] for d in core if d["kind"] == "ConfigMap"]
    assert cms[0] == "config-network"                      # the release's configmaps/network.yaml
    assert set(cms) >= {"config-autoscaler", "config-deployment", "config-domain",
                        "config-features", "config-observability", "config-defaults"}
    assert {d["metadata"]["name"] for d in core if d["kind"] == "Deployment"} == \
        set(serving.KNATIVE_DEPLOYMENTS)
    assert all(d["metadata"].get("namespace") == "knative-serving" for d in core
               if d["kind"] in ("Deployment", "Service", "ConfigMap", "ServiceAccount"))


def test_ko_images_and_devel_versions_are_resolved(core: list[dict]) -> None:
    text = json.dumps(core)
    assert "ko://" not in text
    assert '"app.kubernetes.io/version": "devel"' not in text
    assert '"app.kubernetes.io/version": "1.21.1"' in text
    images = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"]
              for d in core if d["kind"] == "Deployment"}
    assert images["controller"] == \
        "gcr.io/knative-releases/knative.dev/serving/cmd/controller:v1.21.1"
    assert set(images.values()) < set(serving.images())
    assert by(core, "Image", "queue-proxy")["spec"]["image"] == serving.queue_image()


def test_configmaps_keep_upstream_examples_and_get_the_kind_settings(core: list[dict]
                                                                     ) -> None:
    autoscaler = by(core, "ConfigMap", "config-autoscaler")["data"]
    assert autoscaler["stable-window"] == "60s"
    assert autoscaler["panic-threshold-percentage"] == "200"
    assert "_example" in autoscaler       # Knative's webhook checks it against its checksum
    assert by(core, "ConfigMap", "config-network")["data"]["ingress-class"] == \
        serving.INGRESS_CLASS
    assert by(core, "ConfigMap", "config-domain")["data"]["example.com"] == ""
    deployment = by(core, "ConfigMap", "config-deployment")["data"]
    assert deployment["queue-sidecar-image"] == \
        "gcr.io/knative-releases/knative.dev/serving/cmd/queue:v1.21.1"
    assert "index.docker.io" in deployment["registries-skipping-tag-resolving"]
    for name, want in (("config-features", FEATURES),
                       ("config-observability", OBSERVABILITY)):
        data = by(core, "ConfigMap", name)["data"]
        assert {k: data[k] for k in want} == want and "_example" in data


def test_kserve_objects_as_kustomize_builds_them(kserve: list[dict]) -> None:
    text = json.dumps(kserve)
    assert "$(" not in text and "ko://" not in text       # kustomize's replacements done
    assert "CustomResourceDefinition" not in {d["kind"] for d in kserve}
    assert kserve[0]["kind"] == "Namespace" and kserve[0]["metadata"]["name"] == "kserve"
    for d in kserve:
        assert d["metadata"]["labels"]["app.kubernetes.io/name"] == "kserve"
        cluster_scoped = d["kind"] in ("Namespace", "ClusterRole", "ClusterRoleBinding",
                                       "ClusterStorageContainer",
                                       "MutatingWebhookConfiguration",
                                       "ValidatingWebhookConfiguration")
        assert ("namespace" in d["metadata"]) is not cluster_scoped, d["metadata"]["name"]
    binding = by(kserve, "ClusterRoleBinding", "kserve-manager-rolebinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount",
                                    "name": "kserve-controller-manager",
                                    "namespace": "kserve"}]
    hooks = [h for d in kserve if d["kind"].endswith("WebhookConfiguration")
             for h in d["webhooks"]]
    assert len(hooks) >= 6
    for h in hooks:
        svc = h["clientConfig"]["service"]
        assert (svc["name"], svc["namespace"]) == ("kserve-webhook-server-service", "kserve")
        assert base64.b64decode(h["clientConfig"]["caBundle"]).startswith(b"-----BEGIN")
    mutator = by(kserve, "MutatingWebhookConfiguration", "inferenceservice.serving.kserve.io")
    assert "/mutate-pods" in [h["clientConfig"]["service"]["path"] for h in mutator["webhooks"]]


def test_kserve_manager_and_config(kserve: list[dict]) -> None:
    manager = by(kserve, "Deployment", "kserve-controller-manager")
    containers = manager["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["manager"]  # no kube-rbac-proxy image here
    assert containers[0]["image"] == "kserve/kserve-controller:v0.20.0"
    assert containers[0]["command"] == ["/manager"]   # the image table's entrypoint
    assert containers[0]["args"] == ["--metrics-addr=127.0.0.1:8080", "--leader-elect"]
    assert {"name": "SECRET_NAME", "value": "kserve-webhook-server-cert"} in \
        containers[0]["env"]
    data = by(kserve, "ConfigMap", "inferenceservice-config")["data"]
    assert ":latest" not in json.dumps(data)
    assert json.loads(data["storageInitializer"])["image"] == \
        "kserve/storage-initializer:v0.20.0"
    assert json.loads(data["deploy"]) == {"defaultDeploymentMode": "Knative"}
    assert json.loads(data["ingress"])["disableIstioVirtualHost"] is True
    assert "_example" in data
    assert by(kserve, "ClusterStorageContainer", "default")["spec"]["container"]["image"] \
        == "kserve/storage-initializer:v0.20.0"


def test_no_image_for_an_unknown_ko_path() -> None:
    with pytest.raises(UserError, match="no image name for upstream's ko://example.com/x"):
        serving.image_for("ko://example.com/x")


def test_serving_flag_goes_with_upstream(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "harness", "cluster", "up", "--local",
                           "--serving", "--state-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--serving goes with --upstream" in proc.stderr
    assert not any(tmp_path.iterdir())
