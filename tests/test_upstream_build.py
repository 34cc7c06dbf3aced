"""The upstream control plane's recipe: versions.yaml, the consumer go.mod files and the
kind pins agree; the build's cache key and version ldflags; a missing Go is one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from harness.errors import UserError
from harness.upstream import build

ROOT = Path(__file__).resolve().parents[1]
STAGING = ("api apiextensions-apiserver apimachinery apiserver cli-runtime client-go "
           "cloud-provider cluster-bootstrap code-generator component-base component-helpers "
           "controller-manager cri-api cri-client csi-translation-lib "
           "dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator "
           "kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics "
           "mount-utils pod-security-admission sample-apiserver sample-cli-plugin "
           "sample-controller").split()


def _gomod(consumer: str) -> str:
    return (build.UPSTREAM_DIR / consumer / "go.mod").read_text()


def test_versions_pin_the_kind_release() -> None:
    versions = build.load_versions()
    kind = yaml.safe_load((ROOT / "fixtures/kind/versions.yaml").read_text())
    node_image = kind["kind"]["node_image"]
    k8s = versions["modules"][build.KUBERNETES]
    assert node_image.split(":")[1].split("@")[0] == k8s["version"]
    assert k8s["version"].startswith("v" + kind["kind"]["kubernetes"] + ".")
    assert versions["modules"][build.ETCD]["version"].startswith("v3.6.")


@pytest.mark.parametrize("module", [build.KUBERNETES, build.ETCD, build.COREDNS])
def test_each_go_mod_requires_the_pinned_version(module: str) -> None:
    entry = build.load_versions()["modules"][module]
    gomod = _gomod(entry["consumer"])
    pin = rf"^\s*(require\s+)?{re.escape(module)} {re.escape(entry['version'])}( // indirect)?$"
    assert re.search(pin, gomod, re.M), gomod[:400]
    assert (build.UPSTREAM_DIR / entry["consumer"] / "go.sum").is_file()


def test_kubernetes_replaces_every_staging_module_with_its_tag() -> None:
    entry = build.load_versions()["modules"][build.KUBERNETES]
    gomod = _gomod(entry["consumer"])
    replaced = dict(re.findall(r"^\s*k8s\.io/([\w-]+) => k8s\.io/[\w-]+ (\S+)$", gomod, re.M))
    assert sorted(replaced) == sorted(STAGING)
    assert set(replaced.values()) == {entry["staging"]}
    assert entry["staging"] == "v0." + entry["version"].removeprefix("v1.")
    for binary in entry["binaries"]:
        assert f"k8s.io/kubernetes/cmd/{binary}" in gomod  # a tool directive keeps it


def test_kubernetes_gets_the_version_ldflags() -> None:
    comps = {c.module: c for c in build.components()}
    flags = comps[build.KUBERNETES].ldflags
    assert "-X k8s.io/component-base/version.gitVersion=v1.34.0" in flags
    assert "-X k8s.io/component-base/version.gitMinor=34" in flags
    assert "-X k8s.io/client-go/pkg/version.gitVersion=v1.34.0" in flags
    assert sorted(b for c in comps.values() for b in c.binaries) == sorted(build.BINARIES)


def test_cache_key_follows_the_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    go = build.go_binary() if build.shutil.which("go") else pytest.skip("no Go toolchain")
    comps = build.components()
    key = build.build_key(go, comps)
    assert key.startswith("v1.34.0-")
    assert build.build_key(go, comps) == key
    changed = [build.Component(c.module, c.version, c.consumer, c.packages, c.binaries,
                               c.ldflags + " -X x.y=z") for c in comps]
    assert build.build_key(go, changed) != key
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert build.bin_dir(go) == tmp_path / "harness" / "upstream" / key / "bin"


def test_no_go_toolchain_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(UserError, match="needs a Go toolchain"):
        build.build()
