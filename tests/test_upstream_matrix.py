"""The real mutation matrix (``make upstream-matrix``, :mod:`harness.matrix.upstream`):
its mutations, the ``harness matrix`` command's input errors, and the matrix replayed
from a recording made on real Knative Serving 1.21 + KServe 0.20
(``tests/fixtures/upstream-matrix/``, written by ``make upstream-matrix ARGS="--record
DIR"``): each mutation fails its own check and no other, the baseline passes all nine.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.matrix import evaluation, scenarios, upstream

FIXTURES = Path(__file__).parent / "fixtures" / "upstream-matrix"


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scenarios.write_profile(tmp_path_factory.mktemp("profile"))


# ---------------------------------------------------------------- the mutations


def test_every_check_is_the_target_of_one_real_mutation() -> None:
    assert set(upstream.TARGETS.values()) == set(evaluation.CHECKS)
    assert len(upstream.TARGETS) == len(evaluation.CHECKS)
    fed = {c for cs in {**evaluation.SCENARIO_CHECKS,
                        **evaluation.EXTRA_SCENARIO_CHECKS}.values() for c in cs}
    for m in upstream.MUTATIONS.values():
        assert m.check == "configuration" or m.check in fed


def test_a_per_revision_mutation_changes_only_its_own_scenario_and_not_the_claim() -> None:
    claims = scenarios.manifests(rise=True)
    before = copy.deepcopy(claims)
    for m in upstream.MUTATIONS.values():
        if m.cluster_wide:
            assert m.scenario is None and m.change is None
            continue
        assert m.scenario in claims, m.name
        doc = upstream.applied(m, claims[m.scenario])
        assert doc != claims[m.scenario], f"{m.name} changes nothing"
        assert doc["metadata"]["name"] == claims[m.scenario]["metadata"]["name"]
    assert claims == before, "applied() must not edit the claim"


def test_each_mutation_does_what_it_says() -> None:
    claims = scenarios.manifests(rise=True)

    def doc(name: str) -> dict:
        m = upstream.MUTATIONS[name]
        return upstream.applied(m, claims[m.scenario])

    ann = scenarios.AS
    assert doc("panic-threshold")["metadata"]["annotations"][
        ann + "panic-threshold-percentage"] == "1000"
    assert doc("activation-scale")["metadata"]["annotations"][ann + "activation-scale"] == "3"
    assert doc("burst-capacity-0")["metadata"]["annotations"][
        ann + "target-burst-capacity"] == "0"
    assert doc("scale-down-delay")["metadata"]["annotations"][ann + "scale-down-delay"] == "0s"
    assert doc("retention")["metadata"]["annotations"][
        ann + "scale-to-zero-pod-retention-period"] == "0s"
    fixed = doc("min-replicas")["spec"]["predictor"]
    assert (fixed["minReplicas"], fixed["maxReplicas"]) == (1, 2)
    slow = doc("slow-model")["spec"]["predictor"]["model"]
    assert {"name": "MODEL_LOAD_TIME", "value": "12s"} in slow["env"]
    assert slow["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    gpu = doc("no-affinity")["spec"]["predictor"]
    assert "affinity" not in gpu and gpu["tolerations"], "still schedulable on a GPU node"
    drift = upstream.MUTATIONS["config-drift"]
    assert drift.cluster_wide
    for key, value in drift.config.items():
        assert scenarios.PROFILE["config-autoscaler"][key] != value


def test_unknown_configuration_is_one_line_naming_the_known_ones() -> None:
    with pytest.raises(UserError) as err:
        upstream.check_configs(["baseline", "nope"])
    text = str(err.value)
    assert "\n" not in text and "'nope'" in text and all(c in text for c in upstream.CONFIGS)


@pytest.mark.parametrize("argv, words", [
    (["--only", "nope"], "unknown configuration 'nope'"),
    (["--replay", "/nonexistent/matrix"], "no such folder"),
    (["--kubeconfig", "/tmp/kc"], "--ingress-url"),
])
def test_matrix_command_bad_input_exits_2_with_one_line(
        argv: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    rc = main(["matrix", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and words in err[0], err


def test_a_run_saves_its_shared_scenarios_once(tmp_path: Path) -> None:
    import pandas as pd

    def rec(name: str, ns: str) -> scenarios.ScenarioRecording:
        return scenarios.ScenarioRecording(name, ns, {"metadata": {"name": name}}, [], None,
                                           pd.DataFrame(columns=scenarios.RECORD_COLUMNS),
                                           1.0)

    base = scenarios.Run([], {"a": "1"}, {}, {"cold": rec("cold", "mx-cold"),
                                              "gpu": rec("gpu", "mx-gpu")})
    base.save(tmp_path / "baseline.json.gz")
    row = scenarios.Run(["retention"], {"a": "1"}, {},
                        {"cold": rec("cold", "mx-retention"), "gpu": base.timelines["gpu"]},
                        shared=["gpu"])
    row.save(tmp_path / "retention.json.gz")
    back = scenarios.Run.load(tmp_path / "retention.json.gz")
    assert back.shared == ["gpu"]
    assert back.timelines["cold"].namespace == "mx-retention"
    assert back.timelines["gpu"].namespace == "mx-gpu"


# ---------------------------------------------------------------- replayed from upstream


@pytest.fixture(scope="module")
def verdicts(profile: Path) -> dict[str, dict[str, object]]:
    if not FIXTURES.is_dir():
        pytest.skip("no recorded upstream matrix")
    return {c: evaluation.run_checks(scenarios.Run.load(FIXTURES / f"{c}.json.gz"), profile)
            for c in upstream.CONFIGS if (FIXTURES / f"{c}.json.gz").exists()}


def test_the_recording_is_small_and_what_it_says() -> None:
    files = sorted(FIXTURES.glob("*.json.gz"))
    assert files, "no recording"
    total = sum(p.stat().st_size for p in files)
    assert total < 2_000_000, f"recordings take {total} bytes"
    for p in files:
        config = p.name.split(".")[0]
        run = scenarios.Run.load(p)
        assert run.mutations == ([] if config == "baseline" else [config])
        m = upstream.MUTATIONS.get(config)
        if m is not None and not m.cluster_wide:
            assert set(run.timelines) - set(run.shared) == {m.scenario}
        # recorded on the real cluster: Knative's own PodAutoscaler and KServe's pods
        cold = run.timelines["cold"]
        assert any(e["kind"] == "PodAutoscaler" for e in cold.events)


@pytest.mark.parametrize("config", upstream.CONFIGS)
def test_replayed_upstream_matrix_row(config: str,
                                      verdicts: dict[str, dict[str, object]]) -> None:
    if config not in verdicts:
        pytest.skip(f"{config} was not recorded")
    got = verdicts[config]
    want = evaluation.expected(config, upstream.TARGETS)
    wrong = {c: f"{v.status}: {v.why[:160]}" for c, v in got.items()  # type: ignore[attr-defined]
             if v.status not in want[c]}  # type: ignore[attr-defined]
    assert not wrong, f"{config}\n{evaluation.table({config: got}, upstream.TARGETS)}\n{wrong}"


def test_replay_command_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    rc = main(["matrix", "--replay", str(FIXTURES)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.splitlines()[0].startswith("configuration")
    assert "baseline" in out and "!" not in out
