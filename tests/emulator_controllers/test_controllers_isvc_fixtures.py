"""The reference InferenceServices validate against the CRD schema, and the schema can
reject: an unknown ``scaleMetric`` value and a misspelled field fail."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from harness.emulator.controllers.kserve import revision_template

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "fixtures/schemas/inferenceservice.schema.json").read_text())
FIXTURES = sorted((ROOT / "fixtures/isvc").glob("*.yaml"))
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)


def test_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)


def test_every_storage_kind_and_example_is_present() -> None:
    names = {p.stem for p in FIXTURES}
    assert {"cpu-small", "gpu-rtx5000", "fixed-scale", "storage-s3", "storage-http",
            "storage-pvc"} <= names


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_fixture_validates(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    errors = [e.message for e in VALIDATOR.iter_errors(doc)]
    assert not errors, errors


def test_schema_rejects_qps_and_typos() -> None:
    doc = yaml.safe_load((ROOT / "fixtures/isvc/cpu-small.yaml").read_text())
    bad = copy.deepcopy(doc)
    bad["spec"]["predictor"]["scaleMetric"] = "qps"
    assert any("qps" in e.message for e in VALIDATOR.iter_errors(bad))
    typo = copy.deepcopy(doc)
    typo["spec"]["predictor"]["minReplica"] = 0
    assert any("minReplica" in e.message for e in VALIDATOR.iter_errors(typo))


def test_pass_through_forces_min_scale_and_copies_autoscaling_annotations() -> None:
    doc = yaml.safe_load((ROOT / "fixtures/isvc/gpu-rtx5000.yaml").read_text())
    doc["metadata"]["annotations"] = {
        "autoscaling.knative.dev/window": "60s",
        "autoscaling.knative.dev/min-scale": "3",  # ignored: KServe always sets it
        "kubectl.kubernetes.io/last-applied-configuration": "{}"}
    doc["metadata"]["uid"] = "u"
    doc["spec"]["predictor"].update(scaleTarget=2, scaleMetric="rps")
    tpl = revision_template(doc)
    ann = tpl["metadata"]["annotations"]
    assert ann["autoscaling.knative.dev/window"] == "60s"
    assert ann["autoscaling.knative.dev/min-scale"] == "0"
    assert ann["autoscaling.knative.dev/max-scale"] == "3"
    assert ann["autoscaling.knative.dev/class"] == "kpa.autoscaling.knative.dev"
    assert ann["autoscaling.knative.dev/target"] == "2"
    assert ann["autoscaling.knative.dev/metric"] == "rps"
    assert "kubectl.kubernetes.io/last-applied-configuration" not in ann
    assert tpl["spec"]["containerConcurrency"] == 1
    assert tpl["spec"]["affinity"] == doc["spec"]["predictor"]["affinity"]
    assert tpl["metadata"]["labels"]["serving.kserve.io/inferenceservice"] == "gpu-rtx5000"
    del doc["spec"]["predictor"]["minReplicas"]
    assert revision_template(doc)["metadata"]["annotations"][
        "autoscaling.knative.dev/min-scale"] == "1"


def test_storage_uri_adds_the_storage_initializer() -> None:
    doc = yaml.safe_load((ROOT / "fixtures/isvc/storage-s3.yaml").read_text())
    tpl = revision_template(doc)
    assert tpl["metadata"]["annotations"][
        "serving.kserve.io/storage-initializer-sourceuri"] == "s3://models/linear/v1"
    assert tpl["spec"]["initContainers"][0]["name"] == "storage-initializer"
