"""``harness params`` end to end, through ``python -m harness`` in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.files import data_root


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", "params", *args],
        cwd=data_root(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_coreweave_prints_the_three_documentation_findings() -> None:
    out = harness("--profile", "coreweave")
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert "[error] tick-interval" in text
    assert "tick-interval is not a Knative key" in text
    assert "decisions every 2s, not every 15s" in text
    assert "[error] panic-window" in text
    assert "round(180s x 10%) = 18s, not 24s" in text
    assert "[error] stable-window" in text
    assert "128s != stable-window 180s" in text
    assert "stable_window" in text and "3m0s" in text


def test_json_output_has_values_sources_and_findings() -> None:
    out = harness("--profile", "coreweave", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["params"]["stable_window"] == {
        "value": 180.0, "source": "profile", "key": "config-autoscaler: stable-window",
    }  # fmt: skip
    assert doc["derived"]["panic_window"] == 18.0
    ids = [f["id"] for f in doc["findings"]]
    assert ids[:3] == ["tick-interval", "panic-window", "stable-window"]


def test_configmap_and_isvc_show_documented_vs_configured(tmp_path: Path) -> None:
    cm = tmp_path / "cm.yaml"
    cm.write_text("apiVersion: v1\nkind: ConfigMap\ndata:\n  stable-window: 60s\n"
                  "  tick-interval: 15s\n")  # fmt: skip
    isvc = tmp_path / "isvc.yaml"
    isvc.write_text("spec:\n  predictor:\n    minReplicas: 1\n    maxReplicas: 10\n")
    out = harness("--profile", "coreweave", "--configmap", str(cm), "--isvc", str(isvc), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    diffs = {d["field"]: (d["documented"], d["configured"]) for d in doc["differences"]}
    assert diffs["stable_window"] == (180.0, 60.0)
    assert diffs["min_scale"] == (0, 1)
    assert diffs["container_concurrency"] == (1, 0)
    assert doc["ignored_keys"] == ["tick-interval"]
    assert any(f["id"] == "tick-interval" and f["side"] == "configured" for f in doc["findings"])
    table = harness("--profile", "coreweave", "--configmap", str(cm))
    assert "Documented vs configured" in table.stdout


BAD = [
    pytest.param("name: x\nconfig-autoscaler:\n  tick-intervall: 15s\n",
                 "key 'config-autoscaler.tick-intervall': unknown key; allowed keys here:",
                 id="unknown profile key"),
    pytest.param("name: x\nconfig-autoscaler:\n  stable-window: 3s\n",
                 "key 'config-autoscaler.stable-window': '3s' is out of range; "
                 "allowed: 6s to 1h, whole seconds", id="stable-window 3s"),
    pytest.param("name: x\nconfig-autoscaler:\n  max-scale-down-rate: \"1\"\n",
                 "key 'config-autoscaler.max-scale-down-rate': '1' is out of range; "
                 "allowed: greater than 1.0", id="max-scale-down-rate 1"),
    pytest.param("name: x\nconfig-autoscaler:\n  scale-down-delay: 60 s\n",
                 "key 'config-autoscaler.scale-down-delay': '60 s' is not allowed; "
                 "allowed: a Go duration, >= 0s, whole seconds", id="malformed duration"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_profile_is_one_line_and_exit_2(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    out = harness("--profile", str(path))
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"harness params: error: {path}: ")
    assert message in lines[0]


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--profile", "{tmp}/missing.yaml"], id="missing profile file"),
        pytest.param(["--profile", "coreweave", "--configmap", "{tmp}/missing.yaml"],
                     id="missing configmap file"),
        pytest.param(["--profile", "coreweave", "--isvc", "{tmp}/missing.yaml"],
                     id="missing isvc file"),
    ],
)  # fmt: skip
def test_missing_file_is_one_line_and_exit_2(tmp_path: Path, args: list[str]) -> None:
    out = harness(*(a.format(tmp=tmp_path) for a in args))
    assert out.returncode == 2
    assert out.stderr == f"harness params: error: {tmp_path}/missing.yaml: file not found\n"


def test_bad_configmap_value_names_the_file_and_key(tmp_path: Path) -> None:
    cm = tmp_path / "cm.yaml"
    cm.write_text("data:\n  max-scale-down-rate: '1.0'\n")
    out = harness("--profile", "coreweave", "--configmap", str(cm))
    assert out.returncode == 2
    assert out.stderr == (
        f"harness params: error: {cm}: key 'max-scale-down-rate': '1.0' is out of range; "
        "allowed: greater than 1.0\n"
    )


def test_unknown_profile_name_exits_2() -> None:
    out = harness("--profile", "nope")
    assert out.returncode == 2
    assert "known profiles: coreweave, fast, knative-defaults" in out.stderr
