"""The kind bring-up run against fake ``kind``, ``docker`` and ``kubectl`` executables.

Each fake is a small script in a temporary folder put alone on the PATH; it appends its
argv (and stdin, for ``kubectl apply -f -``) as one JSON line to a log, prints the
clusters listed in ``FAKE_KIND_CLUSTERS`` for ``kind get clusters``, and exits with
``FAKE_FAIL_CODE`` when its command line starts with ``FAKE_FAIL``.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.errors import UserError
from harness.kind import plan_down, plan_up
from harness.kind.config import load_cluster, load_versions, node_names
from harness.kind.steps import CommandResult, Step, StepFailed, execute

FAKE = """#!{python}
import json, os, sys
tool = os.path.basename(sys.argv[0])
argv = [tool] + sys.argv[1:]
stdin = sys.stdin.read() if "-" in sys.argv[1:] else None
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps({{"argv": argv, "stdin": stdin}}) + "\\n")
if argv[:3] == ["kind", "get", "clusters"]:
    print("\\n".join(os.environ.get("FAKE_KIND_CLUSTERS", "").split(",")))
fail = os.environ.get("FAKE_FAIL", "")
if fail and " ".join(argv).startswith(fail):
    print(tool + ": simulated failure", file=sys.stderr)
    sys.exit(int(os.environ.get("FAKE_FAIL_CODE", "1")))
"""


def make_fakes(tmp_path: Path, tools: tuple[str, ...] = ("kind", "docker", "kubectl")) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in tools:
        path = bin_dir / tool
        path.write_text(FAKE.format(python=sys.executable))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return bin_dir


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = make_fakes(tmp_path)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("FAKE_LOG", str(log))
    for var in ("FAKE_FAIL", "FAKE_FAIL_CODE", "FAKE_KIND_CLUSTERS"):
        monkeypatch.delenv(var, raising=False)
    return log


def calls(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def argvs(log: Path) -> list[list[str]]:
    return [c["argv"] for c in calls(log)]


def index_of(seq: list[list[str]], *needle: str) -> int:
    for i, argv in enumerate(seq):
        line = " ".join(argv)
        if all(n in line for n in needle):
            return i
    raise AssertionError(f"no command with {needle}")


def test_up_runs_every_command_in_order(fakes: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cluster", "up", "--kind", "--name", "t1", "--profile", "fast"]) == 0
    seq = argvs(fakes)
    v = load_versions()
    # the precheck, then exactly the plan, in order
    assert seq[0] == ["kind", "get", "clusters"]
    assert seq[1:] == [list(s.argv) for s in plan_up("t1", profile="fast")]
    assert seq[1][:2] == ["docker", "build"] and v.modelserver_image in seq[1]
    assert seq[2][:3] == ["kind", "create", "cluster"]
    assert seq[2][seq[2].index("--name") + 1] == "t1"
    assert seq[2][seq[2].index("--config") + 1].endswith("fixtures/kind/cluster.yaml")
    # every kubectl call names the kind context, so nothing lands on another cluster
    kubectl = [a for a in seq if a[0] == "kubectl"]
    assert kubectl and all(a[1:3] == ["--context", "kind-t1"] for a in kubectl)
    order = [
        index_of(seq, "kind create cluster"),
        index_of(seq, "wait --for=condition=Ready nodes --all"),
        index_of(seq, "patch node t1-worker2 --subresource=status"),
        index_of(seq, "kind load docker-image", v.modelserver_image, "--name t1"),
        index_of(seq, "apply -f", v.cert_manager_manifest),
        index_of(seq, "wait", "-n cert-manager"),
        index_of(seq, "apply -f", v.knative_crds),
        index_of(seq, "crd/podautoscalers.autoscaling.internal.knative.dev"),
        index_of(seq, "apply -f", v.knative_core),
        index_of(seq, "apply -f", v.kourier_manifest),
        index_of(seq, "patch configmap config-network"),
        index_of(seq, "patch configmap config-domain"),
        index_of(seq, "wait", "-n knative-serving"),
        index_of(seq, "apply --server-side", v.kserve_manifest),
        index_of(seq, "crd/inferenceservices.serving.kserve.io"),
        index_of(seq, "deployment/kserve-controller-manager"),
        index_of(seq, "patch configmap inferenceservice-config"),
        index_of(seq, "apply --server-side", v.kserve_cluster_resources),
        index_of(seq, "apply -f -"),
    ]
    assert order == sorted(order)
    assert order[-1] == len(seq) - 1  # the profile's config-autoscaler comes last
    out = capsys.readouterr().out
    assert "[1/" in out and "$ docker build" in out and "is ready" in out


def test_gpu_workers_get_fake_capacity_taint_and_wait(fakes: Path) -> None:
    assert main(["cluster", "up", "--kind", "--name", "gpu"]) == 0
    seq = argvs(fakes)
    patches = [a for a in seq if a[3:5] == ["patch", "node"]]
    assert [a[5] for a in patches] == ["gpu-worker2", "gpu-worker3", "gpu-worker4"]
    for a, count in zip(patches, ("4", "4", "8"), strict=True):
        assert "--subresource=status" in a and "--type=json" in a
        assert json.loads(a[a.index("-p") + 1]) == [
            {"op": "add", "path": "/status/capacity/nvidia.com~1gpu", "value": count}]
    taints = [a[5] for a in seq if a[3:5] == ["taint", "node"]]
    assert taints == ["gpu-worker2", "gpu-worker3", "gpu-worker4"]
    waits = [a for a in seq if "--for=jsonpath={.status.allocatable.nvidia\\.com/gpu}=8" in a]
    assert len(waits) == 1 and "node/gpu-worker4" in waits[0]
    # no profile: config-autoscaler is left at Knative's defaults
    assert not any(a[-3:] == ["apply", "-f", "-"] for a in seq)


def test_profile_config_autoscaler_is_sent_on_stdin(fakes: Path) -> None:
    assert main(["cluster", "up", "--kind", "--name", "p", "--profile", "coreweave"]) == 0
    last = calls(fakes)[-1]
    assert last["argv"][-3:] == ["apply", "-f", "-"]
    cm = yaml.safe_load(last["stdin"])
    assert cm["metadata"] == {**cm["metadata"], "name": "config-autoscaler",
                              "namespace": "knative-serving"}
    assert cm["data"]["stable-window"] == "180s"
    assert cm["data"]["max-scale-down-rate"] == "1.1"


def test_failing_step_stops_the_sequence(fakes: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FAKE_FAIL", "kubectl --context kind-f wait --for=condition=Available "
                                    "deployment --all -n cert-manager")
    monkeypatch.setenv("FAKE_FAIL_CODE", "7")
    assert main(["cluster", "up", "--kind", "--name", "f"]) == 1
    seq = argvs(fakes)
    steps = plan_up("f")
    n = next(i for i, s in enumerate(steps, 1) if "-n" in s.argv and "cert-manager" in s.argv)
    assert seq[1:] == [list(s.argv) for s in steps[:n]]  # nothing after the failure ran
    err = capsys.readouterr().err
    assert f"step {n}/{len(steps)} failed" in err and "exited with code 7" in err
    assert "harness cluster down --kind --name f" in err  # the cluster exists: say how to remove


def test_failing_first_step_says_nothing_was_created(
        fakes: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FAKE_FAIL", "docker build")
    assert main(["cluster", "up", "--kind", "--name", "b"]) == 1
    assert [a[:2] for a in argvs(fakes)] == [["kind", "get"], ["docker", "build"]]
    assert "nothing was created" in capsys.readouterr().err


@pytest.mark.parametrize("missing", ["kind", "docker", "kubectl"])
def test_missing_tool_exits_2_before_anything_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        missing: str) -> None:
    bin_dir = make_fakes(tmp_path, tuple(t for t in ("kind", "docker", "kubectl") if t != missing))
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("FAKE_LOG", str(log))
    assert main(["cluster", "up", "--kind"]) == 2
    err = capsys.readouterr().err
    assert f"{missing} not found on the PATH" in err and "Install:" in err
    assert "http" not in err  # a hint, not a link
    if missing == "kind":
        assert f"kind {load_versions().kind}" in err
    assert calls(log) == []


def test_existing_cluster_exits_2_and_creates_nothing(
        fakes: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FAKE_KIND_CLUSTERS", "other,taken")
    assert main(["cluster", "up", "--kind", "--name", "taken"]) == 2
    assert argvs(fakes) == [["kind", "get", "clusters"]]
    assert "already exists" in capsys.readouterr().err


def test_dry_run_prints_commands_and_runs_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no tools at all: a dry run needs none
    assert main(["cluster", "up", "--kind", "--name", "d", "--profile", "fast",
                 "--dry-run"]) == 0
    out = capsys.readouterr().out
    steps = plan_up("d", profile="fast")
    for s in steps:
        assert s.shell() in out
    assert "nothing is run" in out and "stable-window: 6s" in out


def test_down_deletes_the_cluster(fakes: Path) -> None:
    assert main(["cluster", "down", "--kind", "--name", "gone"]) == 0
    assert argvs(fakes) == [["kind", "delete", "cluster", "--name", "gone"]]
    assert [list(s.argv) for s in plan_down("gone")] == argvs(fakes)


def test_down_without_kind_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(make_fakes(tmp_path, ("docker", "kubectl"))))
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "calls.jsonl"))
    assert main(["cluster", "down", "--kind"]) == 2
    assert "kind not found on the PATH" in capsys.readouterr().err
    assert not (tmp_path / "calls.jsonl").exists()


def test_cli_as_a_process_with_fakes(tmp_path: Path) -> None:
    bin_dir = make_fakes(tmp_path)
    log = tmp_path / "calls.jsonl"
    env = {**os.environ, "PATH": str(bin_dir), "FAKE_LOG": str(log),
           "FAKE_FAIL": "kubectl --context kind-proc apply -f https://github.com/knative"}
    done = subprocess.run([sys.executable, "-m", "harness", "cluster", "up", "--kind",
                           "--name", "proc"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1, done.stderr
    assert "Install the Knative Serving" in done.stderr and "failed" in done.stderr
    assert argvs(log)[-1][-1].endswith("serving-crds.yaml")


def test_bad_profile_or_name_exits_2_before_anything_runs(
        fakes: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cluster", "up", "--kind", "--profile", "no-such-profile"]) == 2
    assert main(["cluster", "up", "--kind", "--name", "Bad_Name"]) == 2
    assert calls(fakes) == []
    assert main(["cluster", "up", "--local", "--dry-run"]) == 2  # --dry-run goes with --kind


def test_retries_then_gives_up() -> None:
    seen: list[tuple[str, ...]] = []

    def runner(argv: tuple[str, ...], *, stdin: str | None = None) -> CommandResult:
        seen.append(argv)
        return CommandResult(3 if argv[0] == "flaky" else 0)

    out = io.StringIO()
    steps = [Step("ok", ("true",)), Step("flaky", ("flaky",), retries=2, retry_delay_s=0),
             Step("never", ("never",))]
    with pytest.raises(StepFailed) as info:
        execute(steps, runner=runner, out=out, sleep=lambda s: None)
    assert seen == [("true",), ("flaky",), ("flaky",), ("flaky",)]
    assert info.value.index == 2 and info.value.returncode == 3
    assert "retrying" in out.getvalue()


def test_node_names_follow_kind() -> None:
    roles = ["control-plane", "worker", "worker", "control-plane", "worker"]
    assert node_names("c", roles) == ["c-control-plane", "c-worker", "c-worker2",
                                      "c-control-plane2", "c-worker3"]


def test_gpu_worker_needs_a_fake_gpu_count(tmp_path: Path) -> None:
    bad = tmp_path / "cluster.yaml"
    bad.write_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n"
                   "- role: control-plane\n- role: worker\n"
                   "  labels: {gpu.nvidia.com/class: A100_PCIE_80GB}\n")
    with pytest.raises(UserError, match="fake-gpus"):
        load_cluster("x", bad)


def test_cluster_file_matches_the_pins() -> None:
    v = load_versions()
    nodes = load_cluster("harness")
    assert [n.role for n in nodes].count("control-plane") == 1
    assert all(n.image == v.node_image for n in nodes)  # every node on the pinned image
    assert "@sha256:" in v.node_image
    classes = [n.gpu_class for n in nodes if n.role == "worker"]
    assert classes.count("Quadro_RTX_5000") == 2 and classes.count("A100_PCIE_80GB") == 1
    assert None in classes  # a CPU worker for the system components
    assert v.kubernetes in v.node_image.replace("v", "", 1)


def test_manifest_urls_carry_their_pinned_versions() -> None:
    v = load_versions()
    assert f"/{v.cert_manager}/" in v.cert_manager_manifest
    assert f"knative-{v.knative_serving}/" in v.knative_crds
    assert f"knative-{v.knative_serving}/" in v.knative_core
    assert f"knative-{v.net_kourier}/" in v.kourier_manifest
    assert f"/{v.kserve}/" in v.kserve_manifest and f"/{v.kserve}/" in v.kserve_cluster_resources
    assert v.kserve_deployment_mode == "Knative"
    for url in (v.cert_manager_manifest, v.knative_crds, v.knative_core, v.kourier_manifest,
                v.kserve_manifest, v.kserve_cluster_resources):
        assert url.startswith("https://github.com/") and "/releases/download/" in url


def test_dry_run_lists_what_knative_and_kserve_need_in_order(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Upstream's deploy blockers, each fixed by a step the plan names and explains: the
    kserve namespace before kserve.yaml (v0.20.0's has no Namespace), the three podspec
    flags (config-features, default disabled), metrics-protocol prometheus
    (config-observability, default none, read at start: the autoscaler is restarted) and
    the harness-linear ClusterServingRuntime after KServe."""
    assert main(["cluster", "up", "--kind", "--name", "d", "--dry-run"]) == 0
    out = capsys.readouterr().out
    v = load_versions()
    marks = [
        "patch configmap config-features -n knative-serving --type=merge -p "
        "'{\"data\":{\"kubernetes.podspec-nodeselector\":\"enabled\","
        "\"kubernetes.podspec-affinity\":\"enabled\","
        "\"kubernetes.podspec-tolerations\":\"enabled\"}}'",
        "patch configmap config-observability -n knative-serving --type=merge -p "
        "'{\"data\":{\"metrics-protocol\":\"prometheus\"}}'",
        "rollout restart deployment/autoscaler -n knative-serving",
        "rollout status deployment/autoscaler",
        "create namespace kserve",
        f"apply --server-side --force-conflicts -f {v.kserve_manifest}",
        "apply -f " + str(Path(__file__).resolve().parents[1] / "fixtures" / "runtimes"
                          / "harness-linear.yaml"),
    ]
    where = [out.index(m) for m in marks]
    assert where == sorted(where), out
    assert out.index(f"apply -f {v.knative_core}") < where[0]
    # each says why it is there
    for why in ("Knative 1.21 defaults them to disabled", "Knative 1.19+ defaults to none",
                "reads config-observability only at start-up",
                "kserve.yaml has no Namespace object",
                "without it KServe creates no Knative Service"):
        assert why in out
    # the shipped runtime is what the emulator installs too
    from harness.prerequisites import cluster_serving_runtime

    rt = cluster_serving_runtime()
    assert (rt["kind"], rt["metadata"]["name"]) == ("ClusterServingRuntime", "harness-linear")
    (c,) = rt["spec"]["containers"]
    assert "--model_name={{.Name}}" in c["args"] and "--model_dir=/mnt/models" in c["args"]
    assert rt["spec"]["protocolVersions"] == ["v1", "v2"]
    assert c["image"] == v.modelserver_image
