"""The run report renders (page, plots, summary, archive) and ``harness report DIR``
rebuilds it from the raw data alone."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from harness.checks import (
    FAIL,
    Verdict,
    check_no_request_lost,
    check_panic,
    check_scale_down,
    check_scale_to_zero,
    check_scale_up_rate,
)
from harness.kpa import simulate
from harness.observe.frames import infer_panic
from harness.observe.synthetic import frames_from_simulation, records_from_load
from harness.report import Case, build_report, write_report
from harness.resolve import resolve

T0 = 1_800_000_000.0
FAST = resolve(profile="fast").params
BURST = [0.5] * 20 + [4.0] * 20 + [0.0] * 60
REPO = Path(__file__).resolve().parents[1]


def make_case() -> Case:
    no_delay = replace(FAST, scale_down_delay=0.0)  # breaks the scale-down claim
    sim = simulate(no_delay, BURST, 2.0, initial_ready=1)
    f = frames_from_simulation(sim, T0, pod_startup=2.0)
    f = replace(f, panic=infer_panic(f.scale, f.ready, FAST, end=f.end))
    rec = records_from_load(BURST, T0)
    verdicts = [check(f, FAST, rec) for check in (
        check_panic, check_scale_up_rate, check_scale_down, check_scale_to_zero,
        check_no_request_lost)]
    evil = Verdict("escaping", "<script>alert(1)</script>", "k", "skip", "", "", why="x")
    return Case("burst & drain", f, [*verdicts, evil], records=rec, params=FAST)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("reports") / "run-1"
    write_report(root, [make_case()], meta={"profile": "fast", "cluster": "local"})
    return root


def test_report_has_page_summary_plots_timelines_and_archive(run_dir: Path):
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["run_id"] == "run-1" and summary["counts"]["fail"] >= 1
    assert summary["passed"] is False
    assert len(summary["verdicts"]) == 6
    pngs = sorted((run_dir / "plots").glob("*.png"))
    assert len(pngs) == 6 and all(p.stat().st_size > 5000 for p in pngs)
    assert pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    case = run_dir / "cases" / "burst-drain"
    for name in ("pods", "ready", "scale", "panic", "scheduling", "records", "band"):
        assert (case / f"{name}.csv").is_file(), name
    with tarfile.open(run_dir / "run-1.tar.gz") as tar:
        names = tar.getnames()
    assert "run-1/index.html" in names and "run-1/cases/burst-drain/records.csv" in names


def test_page_lists_failures_first_with_numbers_and_why(run_dir: Path):
    page = (run_dir / "index.html").read_text()
    first_fail = page.index('class="badge fail"')
    first_pass = page.index('class="badge pass">PASS</span></td>')
    assert first_fail < first_pass
    assert "scale-down-delay" in page  # the failing check says why
    assert "2 s decision tick" in page  # the budget's named terms
    assert '<img src="plots/burst-drain--scale-down.png"' in page
    assert "<script>alert" not in page and "&lt;script&gt;" in page


def test_harness_report_rebuilds_the_page_from_raw_data(run_dir: Path, tmp_path: Path):
    copy = tmp_path / "run-1"
    shutil.copytree(run_dir, copy)
    (copy / "index.html").unlink()
    shutil.rmtree(copy / "plots")
    (copy / "run-1.tar.gz").unlink()
    proc = subprocess.run([sys.executable, "-m", "harness", "report", str(copy)],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "index.html" in proc.stdout
    assert (copy / "index.html").read_text().count("<section") == 6
    assert len(list((copy / "plots").glob("*.png"))) == 6
    assert (copy / "run-1.tar.gz").is_file()


@pytest.mark.parametrize("make", ["missing", "no-summary", "bad-json"])
def test_harness_report_on_a_bad_dir_is_one_line_and_exit_2(tmp_path: Path, make: str):
    target = tmp_path / "x"
    if make != "missing":
        target.mkdir()
    if make == "bad-json":
        (target / "summary.json").write_text("{not json")
    proc = subprocess.run([sys.executable, "-m", "harness", "report", str(target)],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness report: error:"), proc.stderr


def test_build_report_keeps_verdicts_without_plots_data(tmp_path: Path):
    root = tmp_path / "r"
    root.mkdir()
    v = Verdict("configuration", "as documented", "profile fast", FAIL, "x", "y", why="z")
    (root / "summary.json").write_text(json.dumps(
        {"run_id": "r", "verdicts": [{"case": "c", **v.as_dict()}]}))
    page = build_report(root, archive=False)
    assert "configuration" in page.read_text()
    assert (root / "plots" / "c--configuration.png").is_file()
