"""Load profiles: the shipped files validate, bad files fail with one line naming file and field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from harness.cli import main
from harness.errors import UserError
from harness.load import runner
from harness.load.profile import (
    SHAPES,
    load_schema,
    parse_profile,
    profile_from_json,
    read_load_profile,
)

ROOT = Path(__file__).resolve().parent.parent
PROFILES = sorted((ROOT / "loadprofiles").glob("*.yaml"))


def test_every_shape_has_a_shipped_profile():
    shapes = {seg.shape for p in PROFILES for seg in read_load_profile(p).segments}
    assert {"burst", "idle", "step", "ramp", "spike", "sine", "trace"} <= shapes
    assert set(SHAPES) - {"constant"} <= shapes


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_shipped_profiles_validate(path):
    doc = yaml.safe_load(path.read_text())
    jsonschema.Draft202012Validator(load_schema()).validate(doc)
    prof = read_load_profile(path)
    assert prof.total > 0 and prof.name == path.stem
    assert profile_from_json(json.loads(json.dumps(prof.to_json()))) == prof


def test_schema_is_a_valid_schema():
    jsonschema.Draft202012Validator.check_schema(load_schema())


def test_trace_profile_reads_the_csv():
    prof = read_load_profile(ROOT / "loadprofiles" / "trace.yaml")
    values = prof.segments[0].params["values"]
    assert len(values) == prof.total == 296
    assert values[0] == pytest.approx(2.5)  # 5.0 at scale 0.5, held for 5 s
    assert values[4] == values[0] and values[5] != values[0]


def _error(doc, tmp_path: Path, name: str = "bad.yaml") -> UserError:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    with pytest.raises(UserError) as exc:
        read_load_profile(path)
    assert "\n" not in str(exc.value)
    assert str(exc.value).startswith(str(path))
    return exc.value


def seg(**kw):
    return {"segments": [kw]}


@pytest.mark.parametrize(
    ("doc", "key", "words"),
    [
        (seg(shape="bursty", duration="5s", rate=3), "segments[0].shape", "unknown shape 'bursty'"),
        (seg(shape="constant", duration="-5s", rate=3), "segments[0].duration", "positive"),
        (seg(shape="constant", duration="0s", rate=3), "segments[0].duration", "positive"),
        (seg(shape="constant", duration=5, rate=3), "segments[0].duration", "Go duration"),
        (seg(shape="constant", duration="0", rate=3), "segments[0].duration", "positive"),
        (seg(shape="constant", duration="5x", rate=3), "segments[0].duration",
         "'5x' is not a Go duration"),
        (seg(shape="constant", duration="-5x", rate=3), "segments[0].duration",
         "'-5x' is not a Go duration"),
        (seg(shape="constant", rate=3), "segments[0].duration", "required key is missing"),
        (seg(shape="ramp", duration="5s", rate={"from": 1}), "segments[0].rate.to", "missing"),
        (seg(shape="constant", duration="5s"), "segments[0]", "exactly one of 'concurrency'"),
        (seg(shape="constant", duration="5s", rate=1, concurrency=1), "segments[0]",
         "exactly one of"),
        (seg(shape="idle", duration="5s", rate=1), "segments[0]", "neither"),
        (seg(shape="constant", duration="5s", rate=-1), "segments[0].rate", ">= 0"),
        (seg(shape="constant", duration="5s", rate=1, extra=2), "segments[0].extra",
         "unknown key"),
        (seg(shape="constant", duration="5s", concurrency=1.5), "segments[0].concurrency",
         "whole number"),
        (seg(shape="spike", duration="5s", rate={"base": 1, "peak": 5, "at": "4s",
                                                  "width": "2s"}),
         "segments[0].rate.width", "after the segment"),
        (seg(shape="sine", duration="5s", rate={"mean": 1, "amplitude": 2, "period": "5s"}),
         "segments[0].rate.amplitude", "exceed mean"),
        (seg(shape="burst", duration="5s", concurrency={"baseline": 1, "capacity": 2,
                                                        "multiple": 3, "at": "5s"}),
         "segments[0].concurrency.at", "not inside"),
        (seg(shape="trace", rate={"file": "missing.csv"}), "segments[0].rate.file",
         "cannot read trace"),
        ({"segments": []}, "segments", "must not be empty"),
        ({"name": "x"}, "segments", "required key is missing"),
        ({"segments": [{"shape": "idle", "duration": "1s"}], "request": {"protocol": "v3"}},
         "request.protocol", "unknown value 'v3'"),
        ({"segments": [{"shape": "idle", "duration": "1s"}], "limits": {"timeout": "-1s"}},
         "limits.timeout", "positive"),
    ],
)
def test_bad_profiles_name_the_field(tmp_path, doc, key, words):
    err = _error(doc, tmp_path)
    assert err.key == key, str(err)
    assert words in str(err)


def test_trace_csv_errors(tmp_path):
    (tmp_path / "t.csv").write_text("second,value\n0,1\n0,2\n")
    err = _error(seg(shape="trace", rate={"file": "t.csv"}), tmp_path)
    assert err.key == "segments[0].rate.file" and "line 3" in str(err)
    (tmp_path / "t.csv").write_text("s,v\n0,1\n")
    assert "header" in str(_error(seg(shape="trace", rate={"file": "t.csv"}), tmp_path))


def test_not_yaml_and_not_a_mapping(tmp_path):
    assert "not valid YAML" in str(_error("segments: [", tmp_path))
    assert "mapping" in str(_error("- 1\n- 2\n", tmp_path))


def test_cli_bad_profile_exits_2_with_one_line_and_starts_no_locust(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("segments:\n  - {shape: wobble, duration: 5s, rate: 3}\n")

    def no_process(*a, **k):  # pragma: no cover - failing is the point
        raise AssertionError("a Locust process was started for a bad profile")

    monkeypatch.setattr(runner._Children, "start", no_process)
    rc = main(["load", str(bad), "--url", "http://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1
    assert err.startswith(f"harness load: error: {bad}: key 'segments[0].shape': unknown shape")


def test_cli_bad_profile_in_a_subprocess(tmp_path):
    bad = tmp_path / "neg.yaml"
    bad.write_text("segments:\n  - {shape: constant, duration: -3s, concurrency: 2}\n")
    p = subprocess.run([sys.executable, "-m", "harness", "load", str(bad), "--url",
                        "http://127.0.0.1:9", "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert p.stderr == (f"harness load: error: {bad}: key 'segments[0].duration': "
                        "'-3s' must be a positive duration\n")
    assert not (tmp_path / "out").exists()


def test_parse_profile_defaults():
    prof = parse_profile({"segments": [{"shape": "idle", "duration": "1m"}]}, where="x")
    assert (prof.protocol, prof.model, prof.total, prof.timeout) == ("v1", "", 60.0, 30.0)


@pytest.mark.parametrize(("text", "seconds"), [("+1m", 60.0), ("1m30s", 90.0), ("500μs", 5e-4)])
def test_durations_follow_go_grammar(text, seconds):
    prof = parse_profile({"segments": [{"shape": "idle", "duration": text}]}, where="x")
    assert prof.total == pytest.approx(seconds)
