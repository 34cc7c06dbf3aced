"""The reference model against Knative's own autoscaler code (the upstream engine).

Builds ``upstream/kpaoracle`` with Go on first use (cold in CI: module download and
compile, a few minutes) and runs it ONCE for the 300 random scenarios. A machine without
Go fails here, loudly; set ``HARNESS_SKIP_UPSTREAM=1`` to skip on purpose.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.kpa import differential as diff
from harness.kpa.scenario import load_scenario
from harness.kpa.upstream import UPSTREAM_DIR, build, oracle_input, run_many

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = sorted((ROOT / "tests" / "fixtures" / "oracle").glob("*.yaml"))
SCENARIOS = sorted((ROOT / "fixtures" / "scenarios").glob("*.yaml"))
SEED = 13
COUNT = 300

pytestmark = pytest.mark.timeout(1200)  # a cold build downloads and compiles Go modules


@pytest.fixture(scope="module")
def oracle() -> Path:
    if os.environ.get("HARNESS_SKIP_UPSTREAM") == "1":
        pytest.skip("HARNESS_SKIP_UPSTREAM=1: the upstream oracle is skipped on purpose")
    return build(progress=sys.stderr)


# --- versions (no Go needed) ----------------------------------------------------------


def test_versions_file_go_mod_and_kind_pins_agree() -> None:
    versions = yaml.safe_load((UPSTREAM_DIR / "versions.yaml").read_text())
    serving = versions["modules"]["knative.dev/serving"]
    gomod = (UPSTREAM_DIR / "go.mod").read_text()
    assert re.search(rf"^\s*knative\.dev/serving {re.escape(serving['version'])}$", gomod, re.M)
    assert re.search(rf"^go {re.escape(versions['go'])}$", gomod, re.M)
    kind = yaml.safe_load((ROOT / "fixtures" / "kind" / "versions.yaml").read_text())
    assert serving["release"] == kind["knative_serving"]["version"]
    # Knative Serving's Go module tags run v0.(27 + minor).patch for release v1.minor.patch
    major, minor, patch = map(int, serving["release"].removeprefix("v").split("."))
    assert (major, serving["version"]) == (1, f"v0.{27 + minor}.{patch}")


def test_no_upstream_source_in_the_repository() -> None:
    go_files = [p.relative_to(UPSTREAM_DIR) for p in UPSTREAM_DIR.rglob("*.go")]
    # ours: the oracle, and the control plane's two one-call mains (etcdmain.Main, coremain.Run)
    mains = {("etcd", "cmd", "etcd", "main.go"), ("coredns", "cmd", "coredns", "main.go")}
    assert go_files and all(p.parts[0] == "kpaoracle" or p.parts in mains for p in go_files)
    assert not any(UPSTREAM_DIR.rglob("vendor"))


# --- the differential test -----------------------------------------------------------


def test_300_random_scenarios_agree_with_upstream(oracle: Path) -> None:
    report = diff.differential(COUNT, SEED)
    print(f"{report.count} scenarios, agreement {report.rate:.2%} ({report.seconds:.1f} s)")
    assert report.count == COUNT
    if report.divergences:
        first = report.divergences[0]
        small = diff.shrink(first.doc)
        pytest.fail(f"{report.count - report.agreed} of {COUNT} diverge; first #{first.index}: "
                    f"{first.differences[:3]}; shrunk: {json.dumps(small)}")


def test_generator_covers_the_ranges() -> None:
    rng = random.Random(SEED)
    docs = [diff.random_scenario(rng) for _ in range(COUNT)]
    config_keys = {k for d in docs for k in d["config"]}
    annotations = {k for d in docs for k in d["annotations"]}
    from harness.knobs import ANNOTATIONS, CONFIG_KEYS

    assert config_keys >= {k.name for k in CONFIG_KEYS} - {"pod-autoscaler-class"}
    assert annotations >= {diff.A + k.name for k in ANNOTATIONS} - {diff.A + "class"}
    assert {0, 1} <= {d["container_concurrency"] for d in docs}
    assert any(d["container_concurrency"] > 1 for d in docs)
    pods = [d["initial_ready"] for d in docs]
    assert min(pods) == 0 and max(pods) > 50
    assert any(d.get("fresh") for d in docs) and any(d.get("hold_ready") for d in docs)
    assert any(d.get("reachable") is False for d in docs)
    assert any(len(d["load"]) > 5 for d in docs)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_regression_fixture_agrees(oracle: Path, path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    (out,) = list(diff.outcomes([doc]))
    assert out.agrees, out.differences[:5]


def test_a_reinjected_model_bug_is_caught(oracle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first EBC floored again (the old bug): the fixture that found it diverges."""
    import math

    def floored(params):  # type: ignore[no-untyped-def]
        tbc = params.target_burst_capacity
        return int(tbc) if tbc <= 0 else math.floor(
            params.initial_scale * params.total_per_pod - tbc)

    module = importlib.import_module("harness.kpa.simulate")  # the module, not the function
    monkeypatch.setattr(module, "initial_ebc", floored)
    doc = yaml.safe_load((ROOT / "tests/fixtures/oracle/first-ebc-truncates.yaml").read_text())
    (out,) = list(diff.outcomes([doc]))
    assert any("ebc: model -211, upstream -210" in d for d in out.differences)


def test_both_refuse_and_one_refuses(oracle: Path) -> None:
    bad = {"annotations": {diff.A + "window": "5s"}, "load": [{"for": 4, "concurrency": 1}]}
    (out,) = list(diff.outcomes([bad]))
    assert out.agrees and out.refused
    (answer,) = list(run_many([{"id": 7, "config": {"stable-window": "5s"}, "load": [1.0]}]))
    assert answer["id"] == 7 and "stable-window" in answer["error"]


# --- the CoreWeave worked examples through both engines -------------------------------


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_worked_example_same_rows_in_both_engines(oracle: Path, path: Path) -> None:
    scenario = load_scenario(path)
    model = scenario.run("model")
    upstream = scenario.run("upstream")
    assert list(model.columns) == list(upstream.columns)
    got = diff.compare(model.to_dict(orient="list"), upstream.to_dict(orient="list"))
    assert not got, got[:5]


def test_cli_scale_down_10_same_decider_column(oracle: Path) -> None:
    path = ROOT / "fixtures" / "scenarios" / "scale-down-10.yaml"
    cmd = [sys.executable, "-m", "harness", "simulate", "--scenario", str(path), "--json"]
    model = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    upstream = subprocess.run([*cmd, "--engine", "upstream"], capture_output=True, text=True,
                              check=True, cwd=ROOT)
    m = [json.loads(line) for line in model.stdout.splitlines()]
    u = [json.loads(line) for line in upstream.stdout.splitlines()]
    assert len(m) == len(u) > 100
    assert [r["decider"] for r in m] == [r["decider"] for r in u]
    assert set(m[0]) == set(u[0])
    assert [r["decider"] for r in m][0] == 10 and min(r["decider"] for r in m) < 10


def test_one_process_runs_many(oracle: Path) -> None:
    scenario = load_scenario(SCENARIOS[0])
    answers = list(run_many(oracle_input(scenario, id=i) for i in range(5)))
    assert [a["id"] for a in answers] == list(range(5))
    assert all(a["columns"] == answers[0]["columns"] for a in answers)


# --- build and errors (no oracle needed) ----------------------------------------------


def test_missing_go_is_one_line_and_exit_2() -> None:
    bindir = Path(sys.executable).parent  # the venv's bin: python and harness, no go
    if (bindir / "go").exists():
        pytest.skip(f"go lives beside python in {bindir}")
    env = {**os.environ, "PATH": str(bindir)}
    path = ROOT / "fixtures" / "scenarios" / "burst.yaml"
    proc = subprocess.run([sys.executable, "-m", "harness", "simulate", "--engine", "upstream",
                           "--scenario", str(path)], capture_output=True, text=True, env=env,
                          cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Go toolchain" in lines[0], proc.stderr


def test_unknown_engine_is_refused_by_the_cli() -> None:
    proc = subprocess.run([sys.executable, "-m", "harness", "simulate", "--engine", "hpa",
                           "--scenario", str(SCENARIOS[0])], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_shrink_keeps_what_diverges() -> None:
    doc = {"config": {"stable-window": "10s", "scale-down-delay": "4s"},
           "annotations": {diff.A + "window": "20s"}, "initial_ready": 40,
           "load": [{"for": 8, "concurrency": 3}, {"for": 20, "concurrency": 500},
                    {"for": 9, "concurrency": 0}]}

    def diverges(docs):  # type: ignore[no-untyped-def]
        return [any(s.get("concurrency", 0) > 100 for s in d["load"]) for d in docs]

    small = diff.shrink(doc, diverges=diverges)
    assert small["config"] == {} and small["annotations"] == {}
    assert len(small["load"]) == 1 and small["load"][0]["concurrency"] > 100
    assert small["load"][0]["for"] == 1 and small["initial_ready"] == 1


def test_go_toolchain_is_found_where_ci_expects_it() -> None:
    if os.environ.get("HARNESS_SKIP_UPSTREAM") == "1":
        pytest.skip("HARNESS_SKIP_UPSTREAM=1")
    assert shutil.which("go"), "no Go on PATH: make test builds the upstream oracle with Go"
