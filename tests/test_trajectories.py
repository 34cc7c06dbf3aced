"""Two run bundles side by side (:mod:`harness.report.trajectories`,
``benchmarks/trajectories.py``): the per-second samples and the summary numbers come from
what each bundle recorded, and a folder that is not a run is one error line, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.observe.synthetic import frames_from_series, records_from_load
from harness.report.bundle import Case, write_report
from harness.report.trajectories import compare, load_case, per_second, summarize

T0 = 1_800_000_000.0
ROOT = Path(__file__).resolve().parents[1]


def bundle(root: Path, *, up_at: float, ready_at: float, panic: tuple[float, float],
           zero_at: float) -> Path:
    """A run with one case: one pod, a burst at T0 scales to 3 (desired at ``up_at``,
    ready at ``ready_at``), panic over ``panic``, back to zero at ``zero_at``."""
    f = frames_from_series(T0 - 10, [(0, 1), (10 + up_at, 3), (10 + zero_at, 0)],
                           [(0, 1), (10 + ready_at, 3), (10 + zero_at, 0)],
                           panic=[(10 + panic[0], True), (10 + panic[1], False)],
                           end=10 + zero_at + 5)
    write_report(root, [Case("panic-burst", f, [], records=records_from_load([4, 4, 4], T0))])
    return root


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    a = bundle(tmp_path / "emu", up_at=2.0, ready_at=3.0, panic=(2.0, 8.0), zero_at=30.0)
    b = bundle(tmp_path / "up", up_at=3.5, ready_at=6.0, panic=(3.5, 10.0), zero_at=41.0)
    return a, b


def test_per_second_samples_and_summary_come_from_the_bundle(runs):
    a, b = runs
    ta = load_case(a, "panic-burst")
    assert ta.origin == pytest.approx(T0)
    ps = per_second(ta, -2, 5).set_index("t")
    assert list(ps["desired"]) == [1, 1, 1, 1, 3, 3, 3, 3]
    assert list(ps["ready"]) == [1, 1, 1, 1, 1, 3, 3, 3]
    assert list(ps["panic"]) == [0, 0, 0, 0, 1, 1, 1, 1]
    s = summarize(load_case(b, "panic-burst"))
    assert s["first desired up"] == pytest.approx(3.5)
    assert s["first ready up"] == pytest.approx(6.0)
    assert s["peak desired"] == 3 and s["peak ready"] == 3
    assert s["first desired down"] == pytest.approx(41.0)
    assert s["time to zero"] == pytest.approx(41.0)
    assert s["panic"] == [(3.5, 10.0)]
    # a case without a cold request has no cold-start phases
    assert not any(k.startswith("cold:") for k in s)


def test_compare_prints_both_runs_and_the_differences(runs):
    a, b = runs
    text = compare(a, b, labels=("emulator", "upstream"))
    assert "== panic-burst" in text
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("first ready up"))
    assert line.split()[-3:] == ["3", "6", "+3.00"]
    row5 = next(ln for ln in text.splitlines() if ln.split()[:1] == ["5"])
    assert row5.split("|")[1].split() == ["3", "3", "P"]      # emulator: up and ready
    assert row5.split("|")[2].split() == ["3", "1", "P"]      # upstream: not ready yet


def test_the_command_refuses_a_folder_that_is_not_a_run(runs, tmp_path):
    a, _ = runs
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "trajectories.py"),
                        str(a), str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "not a run report" in r.stderr
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "trajectories.py"),
                        str(a), str(a), "-k", "nothing-like-this"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "share no case matching nothing-like-this" in r.stderr
