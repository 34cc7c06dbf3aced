"""The pins of KServe's Python SDK environment (``fixtures/kserve-sdk/requirements.txt``):
the SDK of the KServe release the upstream cluster runs, every package pinned, and
kubernetes held below 37 (whose ApiClient serializes KServe's models with their Python
attribute names)."""

from __future__ import annotations

import re

import yaml
from packaging.requirements import Requirement

from harness.files import data_path

REQUIREMENTS = data_path("fixtures", "kserve-sdk", "requirements.txt")


def pins() -> dict[str, str]:
    out = {}
    for line in REQUIREMENTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            spec = list(req.specifier)
            assert len(spec) == 1 and spec[0].operator == "==", f"not pinned: {line}"
            out[re.sub(r"[-_.]+", "-", req.name).lower()] = spec[0].version
    return out


def test_the_sdk_is_the_release_the_upstream_cluster_runs() -> None:
    versions = yaml.safe_load(data_path("upstream", "versions.yaml").read_text())
    kserve = versions["modules"]["github.com/kserve/kserve"]["version"]
    assert pins()["kserve"] == kserve.removeprefix("v")


def test_every_dependency_is_pinned_and_kubernetes_is_below_37() -> None:
    found = pins()
    # kserve 0.20.0's own requirements, each present with a pin
    for name in ("kubernetes", "pydantic", "httpx", "numpy", "pandas", "grpcio", "fastapi",
                 "uvicorn", "cloudevents", "protobuf", "orjson", "python-dateutil"):
        assert name in found, name
    assert int(found["kubernetes"].split(".")[0]) < 37, found["kubernetes"]
