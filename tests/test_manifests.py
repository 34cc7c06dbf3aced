"""Every manifest the kind path applies from this repository, the RBAC manifests and the
reference InferenceServices validate: core types with kubernetes-validate (its schemas
ship in the wheel, so this runs offline) at the pinned Kubernetes version, strict (no
unknown fields); KServe and Knative resources against the CRD schemas in
``fixtures/schemas/`` (matched by their ``apiVersion``/``kind`` consts).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from harness.files import data_root
from harness.kind import manifests as m
from harness.kind import plan_up
from harness.kind.config import load_versions
from harness.profiles import PROFILE_NAMES

ROOT = data_root()
CUSTOM_GROUPS = ("serving.kserve.io", "serving.knative.dev", "autoscaling.internal.knative.dev",
                 "networking.internal.knative.dev")


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> schema, for each schema in fixtures/schemas/ that names them."""
    found = {}
    for path in sorted((ROOT / "fixtures" / "schemas").glob("*.json")):
        schema = json.loads(path.read_text())
        props = schema.get("properties", {})
        api = props.get("apiVersion", {}).get("const")
        kind = props.get("kind", {}).get("const")
        if api and kind:
            found[(api, kind)] = schema
    return found


def validate(doc: dict[str, Any], where: str) -> None:
    group = doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else ""
    if group in CUSTOM_GROUPS:
        schema = crd_schemas().get((doc["apiVersion"], doc["kind"]))
        if schema is None:
            pytest.fail(f"{where}: no schema for {doc['apiVersion']} {doc['kind']} in "
                        "fixtures/schemas/")
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=str)
        if errors:
            pytest.fail(f"{where}: {errors[0].message} at {list(errors[0].absolute_path)}")
        return
    try:
        kubernetes_validate.validate(doc, load_versions().kubernetes, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{where}: {exc.message} at {list(exc.absolute_path)}")


def applied_from_repo() -> list[tuple[str, dict[str, Any]]]:
    """The manifests the kind bring-up sends (on stdin) for every shipped profile."""
    out = []
    for profile in PROFILE_NAMES:
        for step in plan_up("m", profile=profile):
            if step.stdin is not None:
                out += [(f"{profile}: {step.title}", d) for d in yaml.safe_load_all(step.stdin)]
    return out


def test_the_kind_path_applies_a_config_autoscaler_per_profile() -> None:
    applied = applied_from_repo()
    assert len(applied) == len(PROFILE_NAMES)
    for _where, doc in applied:
        assert (doc["kind"], doc["metadata"]["name"], doc["metadata"]["namespace"]) == (
            "ConfigMap", "config-autoscaler", "knative-serving")
        assert all(isinstance(v, str) for v in doc["data"].values())


@pytest.mark.parametrize("where,doc", applied_from_repo(), ids=lambda x: str(x)[:40])
def test_applied_manifests_validate(where: str, doc: dict[str, Any]) -> None:
    validate(doc, where)


RBAC = sorted((ROOT / "fixtures" / "rbac").rglob("*.yaml"))


@pytest.mark.parametrize("path", RBAC, ids=lambda p: str(p.relative_to(ROOT)))
def test_rbac_manifests_validate(path: Path) -> None:
    for i, doc in enumerate(docs(path)):
        validate(doc, f"{path.name}[{i}]")


ISVC = sorted((ROOT / "fixtures" / "isvc").glob("*.yaml"))


@pytest.mark.skipif(not ISVC, reason="no reference InferenceServices in fixtures/isvc/")
@pytest.mark.parametrize("path", ISVC, ids=lambda p: p.name)
def test_reference_inferenceservices_validate(path: Path) -> None:
    for i, doc in enumerate(docs(path)):
        validate(doc, f"{path.name}[{i}]")


def test_a_broken_manifest_is_caught() -> None:
    cm = m.config_autoscaler("fast")
    cm["data"]["stable-window"] = 6  # a ConfigMap holds strings only
    with pytest.raises(pytest.fail.Exception, match="data"):
        validate(cm, "broken")
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "dta": {}}
    with pytest.raises(pytest.fail.Exception):
        validate(bad, "typo")
    if ("serving.kserve.io/v1beta1", "InferenceService") in crd_schemas():
        isvc = docs(ISVC[0])[0] if ISVC else None
        if isvc is not None:
            isvc["spec"]["predictor"]["minReplica"] = 1
            with pytest.raises(pytest.fail.Exception):
                validate(isvc, "isvc typo")


def test_patches_are_well_formed() -> None:
    for patch in (m.network_patch(), m.domain_patch(), m.deployment_patch()):
        assert set(patch) == {"data"} and all(isinstance(v, str) for v in patch["data"].values())
    assert m.network_patch()["data"]["ingress-class"] == "kourier.ingress.networking.knative.dev"
    assert "index.docker.io" in m.deployment_patch()["data"]["registries-skipping-tag-resolving"]
    kserve = m.kserve_config_patch("Knative")["data"]
    assert json.loads(kserve["deploy"]) == {"defaultDeploymentMode": "Knative"}
    ingress = json.loads(kserve["ingress"])
    assert ingress["disableIstioVirtualHost"] is True and ingress["ingressDomain"] == m.DOMAIN
    gpu = m.gpu_capacity_patch(4)
    assert gpu == [{"op": "add", "path": "/status/capacity/nvidia.com~1gpu", "value": "4"}]


RULES = {
    # (role, apiGroup, resource, resourceName or None) -> verbs
    ("harness", "", "nodes", None): {"get", "list", "watch"},
    ("harness", "", "pods", None): {"get", "list", "watch"},
    ("harness", "", "services", None): {"get", "list", "watch"},
    ("harness", "", "events", None): {"get", "list", "watch"},
    ("harness", "events.k8s.io", "events", None): {"get", "list", "watch"},
    ("harness", "autoscaling.internal.knative.dev", "podautoscalers", None):
        {"get", "list", "watch"},
    ("harness", "serving.knative.dev", "revisions", None): {"get", "list", "watch"},
    ("harness", "serving.knative.dev", "services", None): {"get", "list", "watch"},
    ("harness", "apiextensions.k8s.io", "customresourcedefinitions", None): {"get", "list"},
    ("harness", "", "namespaces", None): {"get", "list", "watch", "create", "delete"},
    ("harness", "rbac.authorization.k8s.io", "rolebindings", None): {"create"},
    ("harness", "rbac.authorization.k8s.io", "clusterroles", "harness-run"): {"bind"},
    ("harness-run", "serving.kserve.io", "inferenceservices", None):
        {"get", "list", "watch", "create", "update", "patch", "delete"},
    ("harness-run", "serving.kserve.io", "servingruntimes", None): {"get", "create", "update"},
    ("harness-run", "", "pods/log", None): {"get"},
    ("harness-read-config", "", "configmaps", None): {"get", "list", "watch"},
    ("harness-write-config-autoscaler", "", "configmaps", "config-autoscaler"):
        {"get", "update", "patch"},
}


def test_rbac_grants_exactly_what_the_harness_needs() -> None:
    granted: dict[tuple[str, str, str, str | None], set[str]] = {}
    for path in RBAC:
        for doc in docs(path):
            if doc["kind"] not in ("ClusterRole", "Role"):
                continue
            if doc["kind"] == "Role":
                assert doc["metadata"]["namespace"] == "knative-serving"
            for rule in doc["rules"]:
                names = rule.get("resourceNames") or [None]
                for g in rule["apiGroups"]:
                    for r in rule["resources"]:
                        for n in names:
                            key = (doc["metadata"]["name"], g, r, n)
                            granted.setdefault(key, set()).update(rule["verbs"])
    assert granted == RULES
    flat = json.dumps(list(granted)) + json.dumps([sorted(v) for v in granted.values()])
    assert "*" not in flat and "secrets" not in flat and "escalate" not in flat
    readme = (ROOT / "fixtures" / "rbac" / "README.md").read_text()
    for _role, _g, resource, _n in RULES:
        assert f"`{resource}`" in readme or resource in readme, resource


def test_rbac_writer_role_is_optional_and_separate() -> None:
    optional = ROOT / "fixtures" / "rbac" / "optional"
    writers = [d for p in optional.glob("*.yaml") for d in docs(p) if d["kind"] == "Role"]
    assert [w["metadata"]["name"] for w in writers] == ["harness-write-config-autoscaler"]
    for path in RBAC:
        if optional in path.parents:
            continue
        for doc in docs(path):
            for rule in doc.get("rules", []):
                if "configmaps" in rule["resources"]:
                    assert set(rule["verbs"]) <= {"get", "list", "watch"}
