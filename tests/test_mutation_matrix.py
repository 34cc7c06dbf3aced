"""The mutation matrix: every check fails under a mutation that breaks its claim, and only
then (a check that no mutation fails is a defect).

Fast part (``make test``): the registry, its hooks and the cluster wiring. Live part
(``make mutation-matrix``, ``MUTATION_MATRIX=1``): records every configuration on a fresh
emulated cluster (:mod:`harness.matrix`) and checks the matrix; with
``MUTATION_MATRIX_RECORD=DIR`` it also writes the recordings there
(:meth:`harness.matrix.scenarios.Run.save`, replayable with ``Run.load``;
``tests/test_mutation_matrix_replay.py`` replays the committed set), and
``MUTATION_MATRIX_ONLY=a,b`` records only those configurations.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from harness.emulator.mutations import MUTATIONS, Mutations, check_names, known
from harness.errors import UserError
from harness.matrix import evaluation, scenarios
from harness.params import KPAParams

CONFIGS = ["baseline", *sorted(MUTATIONS)]
LIVE = os.environ.get("MUTATION_MATRIX") == "1"


def assert_matrix_row(config: str, verdicts: dict[str, object]) -> None:
    want = evaluation.expected(config)
    wrong = {c: f"{v.status} ({v.why[:120]})" for c, v in verdicts.items()  # type: ignore[attr-defined]
             if v.status not in want[c]}  # type: ignore[attr-defined]
    assert not wrong, f"{config}: {wrong}"


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scenarios.write_profile(tmp_path_factory.mktemp("profile"))


# ---------------------------------------------------------------- registry and hooks


def test_every_check_is_the_target_of_at_least_one_mutation() -> None:
    targets = {m.check for m in MUTATIONS.values()}
    assert targets == set(evaluation.CHECKS)
    fed = {c for cs in evaluation.SCENARIO_CHECKS.values() for c in cs}
    assert set(evaluation.CHECKS) == fed | {"configuration"}


def test_unknown_mutation_is_one_line_listing_the_known_ones() -> None:
    with pytest.raises(UserError) as err:
        check_names(["scale-down-rate", "nope"])
    text = str(err.value)
    assert "\n" not in text and "'nope'" in text and all(n in text for n in known())


def test_cluster_up_with_an_unknown_mutation_exits_2(capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path) -> None:
    from harness.cli import main

    rc = main(["cluster", "up", "--local", "--mutation", "nope", "--state-dir",
               str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "config-drift" in err[0]


def test_kpa_hooks_change_only_what_each_mutation_names() -> None:
    p = KPAParams(min_scale=2, max_scale=2, max_scale_up_rate=1.5, max_scale_down_rate=1.1,
                  scale_down_delay=6.0, scale_to_zero_pod_retention_period=10.0)
    assert Mutations().kpa_params(p) is p
    assert Mutations(["scale-when-fixed"]).kpa_params(p).max_scale == 0
    q = KPAParams(min_scale=0, max_scale=5)
    assert Mutations(["scale-when-fixed"]).kpa_params(q) is q
    assert Mutations(["scale-up-rate"]).kpa_params(p).max_scale_up_rate == 1000.0
    assert Mutations(["scale-down-rate"]).kpa_params(p).max_scale_down_rate > 1e6
    assert Mutations(["no-scale-down-delay"]).kpa_params(p).scale_down_delay == 0.0
    assert Mutations(["short-retention"]).kpa_params(
        p).scale_to_zero_pod_retention_period == 0.0
    assert Mutations(["no-panic"]).kpa_params(p).panic_threshold_percentage == float("inf")
    never = Mutations(["never-zero"])
    assert never.kpa_replicas(0, has_served=True) == 1
    assert never.kpa_replicas(0, has_served=False) == 0
    assert Mutations().kpa_replicas(0, has_served=True) == 0


def test_config_drop_and_placement_hooks() -> None:
    assert Mutations(["config-drift"]).config({"stable-window": "10s"}) == {
        "stable-window": "10s", "max-scale-down-rate": "3"}
    assert Mutations().config({"a": "1"}) == {"a": "1"}
    drop = Mutations(["drop-requests"])
    assert [drop.drop_buffered("ns", "rev") for _ in range(4)] == [True, False, True, False]
    assert not Mutations().drop_buffered("ns", "rev")
    assert Mutations(["ignore-affinity"]).ignore_affinity and not Mutations().ignore_affinity


def test_local_cluster_wires_the_hooks_without_starting() -> None:
    from harness.emulator.local_cluster import LocalCluster

    c = LocalCluster(profile="fast", mutations=["drop-requests", "ignore-affinity",
                                                "config-drift"])
    try:
        assert c.scheduler.ignore_affinity
        assert c.ingress.drop_buffered is not None
        assert c.kpa.mutations is c.kubelet.mutations is c.mutations
        assert c.config["max-scale-down-rate"] == "3"
        assert LocalCluster(profile="fast").ingress.drop_buffered is None
    finally:
        c.stop()


# ---------------------------------------------------------------- the matrix, live


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.skipif(not LIVE, reason="live matrix: make mutation-matrix (MUTATION_MATRIX=1)")
def test_live_matrix(profile: Path) -> None:
    save = os.environ.get("MUTATION_MATRIX_RECORD")
    problems = []
    rows = {}
    only = [c for c in os.environ.get("MUTATION_MATRIX_ONLY", "").split(",") if c]
    for config in only or CONFIGS:
        t0 = time.monotonic()
        run = scenarios.record([] if config == "baseline" else [config])
        if save:
            run.save(Path(save) / f"{config}.json.gz")
        rows[config] = verdicts = evaluation.run_checks(run, profile)
        print(f"{config}: {time.monotonic() - t0:.0f} s", flush=True)
        try:
            assert_matrix_row(config, verdicts)
        except AssertionError as exc:
            problems.append(str(exc))
    print("\n" + evaluation.table(rows))
    assert not problems, "\n".join(problems)
