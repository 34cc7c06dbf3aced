"""The mutation matrix, replayed (fast, in ``make test``): every check on every recorded
configuration in ``tests/fixtures/matrix/`` (a green live run of ``make mutation-matrix``
saved with ``MUTATION_MATRIX_RECORD``): each mutation fails its target check and no
other, and the baseline passes every check.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.emulator.mutations import MUTATIONS
from harness.matrix import evaluation, scenarios

FIXTURES = Path(__file__).parent / "fixtures" / "matrix"
CONFIGS = ["baseline", *sorted(MUTATIONS)]


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scenarios.write_profile(tmp_path_factory.mktemp("profile"))


@pytest.fixture(scope="module")
def verdicts(profile: Path) -> dict[str, dict[str, object]]:
    return {c: evaluation.run_checks(scenarios.Run.load(FIXTURES / f"{c}.json.gz"), profile)
            for c in CONFIGS}


def test_every_configuration_has_a_recording() -> None:
    assert sorted(p.name.split(".")[0] for p in FIXTURES.glob("*.json.gz")) == sorted(CONFIGS)
    total = sum(p.stat().st_size for p in FIXTURES.glob("*.json.gz"))
    assert total < 2_000_000, f"recordings take {total} bytes"


def test_recordings_are_what_they_say() -> None:
    for config in CONFIGS:
        run = scenarios.Run.load(FIXTURES / f"{config}.json.gz")
        assert run.mutations == ([] if config == "baseline" else [config])
        assert set(run.timelines) == set(evaluation.SCENARIO_CHECKS)


@pytest.mark.parametrize("config", CONFIGS)
def test_replayed_matrix_row(config: str, verdicts: dict[str, dict[str, object]]) -> None:
    got = verdicts[config]
    want = evaluation.expected(config)
    wrong = {c: f"{v.status}: {v.why[:160]}" for c, v in got.items()  # type: ignore[attr-defined]
             if v.status not in want[c]}  # type: ignore[attr-defined]
    assert not wrong, f"{config}\n{evaluation.table({config: got})}\n{wrong}"


def test_every_check_fails_under_some_mutation(verdicts: dict[str, dict[str, object]]) -> None:
    failed = {c for config, row in verdicts.items() if config != "baseline"
              for c, v in row.items() if v.status == "fail"}  # type: ignore[attr-defined]
    assert failed == set(evaluation.CHECKS), evaluation.table(verdicts)
