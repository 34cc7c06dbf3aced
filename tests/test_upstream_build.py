"""The upstream build's recipe: versions.yaml, the consumer go.mod files (control plane,
Knative, KServe) and the kind pins agree; the build's cache key and version ldflags; a
missing Go is one line."""

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


@pytest.mark.parametrize("module", [build.KUBERNETES, build.ETCD, build.COREDNS,
                                    build.KNATIVE, build.KSERVE])
def test_each_go_mod_requires_the_pinned_version(module: str) -> None:
    entry = build.load_versions()["modules"][module]
    gomod = _gomod(entry["consumer"])
    pin = rf"^\s*(require\s+)?{re.escape(module)} {re.escape(entry['version'])}( // indirect)?$"
    assert re.search(pin, gomod, re.M), gomod[:400]
    assert (build.UPSTREAM_DIR / entry["consumer"] / "go.sum").is_file()


def test_knative_and_kserve_pin_the_kind_releases() -> None:
    mods = build.load_versions()["modules"]
    kind = yaml.safe_load((ROOT / "fixtures/kind/versions.yaml").read_text())
    assert mods[build.KSERVE]["version"] == kind["kserve"]["version"]
    assert mods[build.KNATIVE]["release"] == kind["knative_serving"]["version"]
    # the oracle (upstream/go.mod) links the same Knative as the cluster runs
    oracle = (build.UPSTREAM_DIR / "go.mod").read_text()
    assert re.search(rf"^\s*knative\.dev/serving {mods[build.KNATIVE]['version']}$", oracle,
                     re.M)
    assert re.fullmatch(r"[0-9a-f]{40}", mods[build.KNATIVE]["commit"])


def test_knative_is_built_with_its_own_dependency_versions() -> None:
    gomod = _gomod(build.load_versions()["modules"][build.KNATIVE]["consumer"])
    assert "replace" not in re.sub(r"//.*", "", gomod)


def test_kserve_go_mod_carries_kserves_replace_lines() -> None:
    gomod = _gomod(build.load_versions()["modules"][build.KSERVE]["consumer"])
    replaced = dict(re.findall(r"^\s*(?:replace\s+)?(\S+) => \S+ (\S+)$", gomod, re.M))
    assert replaced["sigs.k8s.io/controller-runtime"] == "v0.22.5"
    k8s = {m: v for m, v in replaced.items() if m.startswith("k8s.io/")}
    assert len(k8s) == 8 and all(v.startswith("v0.34.") for v in k8s.values()), k8s
    assert {"google.golang.org/grpc", "github.com/expr-lang/expr",
            "github.com/lyft/protoc-gen-validate"} <= set(replaced)


@pytest.mark.parametrize("module", [build.KUBERNETES, build.KNATIVE, build.KSERVE])
def test_each_package_built_is_kept_by_a_tool_directive(module: str) -> None:
    comp = next(c for c in build.components() if c.module == module)
    gomod = _gomod(comp.consumer)
    tools = set(re.findall(r"^\s*(?:tool\s+)?(\S+/cmd/\S+)$", gomod, re.M))
    assert set(comp.packages) <= tools, (comp.packages, tools)
    assert len(comp.packages) == len(comp.binaries)


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
    assert len(set(build.binaries())) == len(build.binaries()) == 13


def test_knative_reports_its_release_commit() -> None:
    comps = {c.module: c for c in build.components()}
    commit = build.load_versions()["modules"][build.KNATIVE]["commit"]
    assert f"-X knative.dev/pkg/changeset.rev={commit[:7]}" in comps[build.KNATIVE].ldflags
    assert comps[build.KNATIVE].binaries == ("knative-controller", "knative-autoscaler",
                                             "knative-activator", "knative-webhook",
                                             "knative-queue")
    assert comps[build.KNATIVE].packages[4] == "knative.dev/serving/cmd/queue"
    assert comps[build.KSERVE].packages == ("github.com/kserve/kserve/cmd/manager",
                                            "github.com/kserve/kserve/cmd/agent")


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
