"""The interim conformance job: reference-model predictions, findings, summary.json, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.params import resolve
from harness.predictions import predict


def _harness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _by_measure(profile: str) -> dict[str, float | None]:
    return {p.measure: p.value for p in predict(resolve(profile=profile).params)}


def test_coreweave_predictions_match_the_worked_examples():
    got = _by_measure("coreweave")
    # knative-kpa.md §11(b): with the 60 s delay, 9 pods at ~76 s, decider 0 at ~616 s.
    assert got["first pod of 10 removed"] == pytest.approx(76, abs=2)
    assert got["largest step down (pods)"] == 1
    assert got["decider says 0"] == pytest.approx(616, abs=2)
    # §11(d): one pod reaches zero ~2040 s (34 min) after traffic stops.
    assert got["replicas reach 0 (from 1 pod)"] == pytest.approx(2040, abs=4)
    # §11(c): one in-flight request over target already panics on the first tick.
    assert got["panic starts"] == 2


def test_fast_profile_reaches_zero_in_about_fifteen_seconds():
    got = _by_measure("fast")
    # 6 s stable window + 4 s delay + 5 s retention, to within the 2 s tick.
    assert 12 <= got["replicas reach 0 (from 1 pod)"] <= 17


def test_conformance_writes_summary_and_says_no_cluster_was_tested(tmp_path):
    res = _harness("conformance", "--profile", "fast", "--report-dir", str(tmp_path), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "No cluster was tested" in " ".join(res.stdout.split())
    (run_dir,) = tmp_path.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["cluster_tested"] is False
    assert summary["profile"] == "fast"
    assert {p["scenario"] for p in summary["predictions"]} == {
        "burst",
        "scale-down",
        "scale-to-zero",
    }


def test_conformance_fails_when_the_documentation_cannot_hold(tmp_path):
    res = _harness(
        "conformance", "--profile", "coreweave", "--report-dir", str(tmp_path), cwd=tmp_path
    )
    assert res.returncode == 1
    assert "panic-window" in res.stdout


def test_conformance_bad_profile_is_one_line_and_exit_2(tmp_path):
    res = _harness("conformance", "--profile", "nope", "--report-dir", str(tmp_path), cwd=tmp_path)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1
    assert "nope" in res.stderr
    assert list(tmp_path.iterdir()) == []
