"""Scenario files: loading, parameter resolution, checks with one-line errors, and the
``harness simulate`` command end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.errors import UserError
from harness.kpa.scenario import Segment, load_scenario, per_second, scenario_from_dict

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "fixtures" / "scenarios"


def write(tmp_path: Path, doc: object, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return path


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_scenario_loads_and_runs(path):
    scenario = load_scenario(path)
    frame = scenario.run()
    assert len(frame) > 0 and scenario.name


def test_coreweave_profile_gives_the_documented_knobs():
    s = load_scenario(SCENARIOS / "scale-down-10.yaml")
    p = s.params
    assert (p.stable_window, p.panic_window, p.scale_down_delay) == (180, 18, 60)
    assert (p.max_scale_down_rate, p.scale_to_zero_pod_retention_period) == (1.1, 1800)
    assert (p.container_concurrency, p.max_scale) == (1, 10)
    assert (s.initial_ready, s.history, len(s.load)) == (10, 8.5, 660)
    assert s.sources["stable_window"] == "profile"


def test_shipped_scale_down_scenario_reproduces_the_worked_example():
    frame = load_scenario(SCENARIOS / "scale-down-10.yaml").run()
    assert frame.loc[frame["desired"] <= 9, "t"].iloc[0] == 76
    assert frame.loc[frame["decider"] == 0, "t"].iloc[0] == 616


def test_config_overrides_the_profile_and_keeps_its_other_keys(tmp_path):
    path = write(tmp_path, {"profile": "coreweave", "config": {"scale-down-delay": "0s"},
                            "load": [{"for": "10s", "concurrency": 1}]})
    p = load_scenario(path).params
    assert (p.scale_down_delay, p.stable_window, p.max_scale) == (0, 180, 10)


def test_annotations_override_the_profile_and_keep_its_inferenceservice(tmp_path):
    path = write(tmp_path, {"profile": "coreweave",
                            "annotations": {"autoscaling.knative.dev/window": "120s"},
                            "load": [{"for": "10s", "concurrency": 1}]})
    s = load_scenario(path)
    assert (s.params.stable_window, s.params.max_scale) == (120, 10)
    assert s.sources["stable_window"] == "annotation"


def test_without_profile_knative_defaults_apply(tmp_path):
    path = write(tmp_path, {"container_concurrency": 4, "load": [{"for": 3, "rps": 1,
                                                                   "concurrency": 2}]})
    s = load_scenario(path)
    assert (s.params.stable_window, s.params.container_concurrency) == (60, 4)
    assert s.load == (2.0, 2.0, 2.0)


def test_per_second_time_weights_segment_edges():
    segs = [Segment(1.5, concurrency=4), Segment(1.0, concurrency=0), Segment(0.5, 2)]
    assert per_second(segs, "concurrency") == [4.0, 2.0, 1.0]


def test_durations_and_start_state_keys(tmp_path):
    doc = {"initial_ready": 3, "fresh": True, "hold_ready": True, "pod_startup": "1m30s",
           "until": "2m", "load": [{"for": "1m", "concurrency": 2}]}
    s = scenario_from_dict(doc)
    assert (s.initial_ready, s.fresh, s.hold_ready, s.pod_startup, s.until) == (
        3, True, True, 90.0, 120.0)
    assert s.run()["t"].iloc[-1] == 120


@pytest.mark.parametrize(
    ("doc", "key", "words"),
    [
        ({"load": [{"for": "1s", "concurrency": 1}], "tick": 2}, "tick", "unknown key"),
        ({"profile": "coreweave"}, "load", "missing"),
        ({"load": []}, "load", "non-empty list"),
        ({"load": [{"for": "ten", "concurrency": 1}]}, "load[0].for", "not a duration"),
        ({"load": [{"for": "0s", "concurrency": 1}]}, "load[0].for", "> 0"),
        ({"load": [{"for": "1s"}]}, "load[0]", "concurrency"),
        ({"load": [{"for": "1s", "concurrency": -1}]}, "load[0].concurrency", ">= 0"),
        ({"load": [{"for": "1s", "users": 1}]}, "load[0].users", "unknown key"),
        ({"load": [{"for": "1s", "rps": 1}]}, "load[0]", "scales on concurrency"),
        ({"initial_ready": -1, "load": [{"for": "1s", "concurrency": 1}]}, "initial_ready",
         ">= 0"),
        ({"fresh": "yes", "load": [{"for": "1s", "concurrency": 1}]}, "fresh", "true or false"),
        ({"config": {"stable-window": "3s"}, "load": [{"for": "1s", "concurrency": 1}]},
         "stable-window", "6s to 1h"),
        ({"config": {"max-scale-down-rate": "1"}, "load": [{"for": "1s", "concurrency": 1}]},
         "max-scale-down-rate", "1"),
        ({"profile": "nope", "load": [{"for": "1s", "concurrency": 1}]}, None, "no such profile"),
        ({"config": [1], "load": [{"for": "1s", "concurrency": 1}]}, "config", "mapping"),
    ],
)
def test_bad_scenarios_raise_one_line_naming_file_and_key(tmp_path, doc, key, words):
    path = write(tmp_path, doc)
    with pytest.raises(UserError) as err:
        load_scenario(path)
    message = str(err.value)
    assert "\n" not in message and words in message
    if key is not None:
        assert err.value.key == key and str(path) in message


def test_missing_and_malformed_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        load_scenario(tmp_path / "absent.yaml")
    with pytest.raises(UserError, match="not valid YAML"):
        load_scenario(write(tmp_path, "load: [\n"))
    with pytest.raises(UserError, match="mapping"):
        load_scenario(write(tmp_path, "- 1\n"))


def test_a_shipped_scenario_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_scenario("burst").name == load_scenario(SCENARIOS / "burst.yaml").name
    with pytest.raises(UserError, match="no such scenario; shipped scenarios: burst, ") as exc:
        load_scenario("bursty")
    assert exc.value.where == "bursty"
    (tmp_path / "burst").write_text("load: [{for: 1s, concurrency: 1}]\n")
    assert load_scenario("burst").name != load_scenario(SCENARIOS / "burst.yaml").name


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)


def test_cli_json_lines_have_the_documented_keys(tmp_path):
    out_csv = tmp_path / "rows.csv"
    out_png = tmp_path / "plot.png"
    proc = harness("simulate", "--scenario", str(SCENARIOS / "scale-to-zero-1.yaml"), "--json",
                   "--csv", str(out_csv), "--plot", str(out_png))
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == 35 * 60 // 2
    assert {"t", "ready", "stable", "panic", "decider", "desired", "panic_mode", "ebc",
            "load", "pa_state", "sks_mode"} <= set(rows[0])
    assert isinstance(rows[0]["panic_mode"], bool) and isinstance(rows[0]["t"], int)
    zero = next(r for r in rows if r["replicas"] == 0)
    assert zero["t"] == 2038 and zero["pa_state"] == "Inactive"
    assert out_csv.read_text().splitlines()[0].startswith("t,load,ready,replicas")
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_prints_a_table_by_default():
    proc = harness("simulate", "--scenario", str(SCENARIOS / "burst.yaml"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["t", "load", "ready", "repl", "stable", "panic", "decider",
                                "desired", "panicking", "ebc", "pa", "sks"]
    assert len(lines) == 1 + (20 + 180 + 60) // 2


def test_cli_bad_scenario_is_one_line_and_exit_2(tmp_path):
    path = write(tmp_path, {"config": {"stable-window": "3s"},
                            "load": [{"for": "1s", "concurrency": 1}]})
    proc = harness("simulate", "--scenario", str(path))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert str(path) in proc.stderr and "stable-window" in proc.stderr
