"""Shipped profiles validate and load; the schema is the tables'; findings follow the numbers."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from harness.errors import UserError
from harness.params import KPAParams
from harness.profiles import PROFILE_NAMES, load_profile, profile_schema, profiles_dir, schema_path
from harness.resolve import resolve


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_shipped_profile_validates_against_the_schema_file(name: str) -> None:
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    doc = yaml.safe_load((profiles_dir() / f"{name}.yaml").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(doc)
    assert load_profile(name).name == name


REGENERATE = (
    "python -c 'import json; from harness.profiles import profile_schema, schema_path; "
    "schema_path().write_text(json.dumps(profile_schema(), indent=2, ensure_ascii=False) "
    '+ "\\n", encoding="utf-8")\''
)


def test_schema_file_is_generated_from_the_key_tables() -> None:
    committed = json.loads(schema_path().read_text(encoding="utf-8"))
    assert committed == profile_schema(), f"the schema file is stale; regenerate: {REGENERATE}"
    jsonschema.Draft202012Validator.check_schema(profile_schema())


def test_knative_defaults_profile_resolves_to_knative_defaults() -> None:
    assert resolve(profile="knative-defaults").params == KPAParams()


def test_coreweave_profile_carries_the_page_table() -> None:
    p = resolve(profile="coreweave").params
    assert (p.stable_window, p.container_concurrency_target_percentage) == (180.0, 0.85)
    assert (p.max_scale_up_rate, p.max_scale_down_rate) == (20.0, 1.1)
    assert (p.scale_to_zero_pod_retention_period, p.scale_down_delay) == (1800.0, 60.0)
    assert (p.min_scale, p.max_scale, p.container_concurrency) == (0, 10, 1)
    assert (p.panic_window, p.target_per_pod) == (18.0, 0.85)


@pytest.mark.parametrize(
    ("claim", "part", "seconds"),
    [
        ("tick-interval", "value", 15.0),
        ("panic-window", "value", 24.0),
        ("stable-window", "value", 128.0),
        ("cold-start-small", "value", 5.0),
        ("cold-start-large", "min", 30.0),
        ("cold-start-large", "max", 60.0),
        ("first-response-after-idle", "min", 15.0),
        ("first-response-after-idle", "max", 60.0),
        ("scale-to-zero-after", "max", 1800.0),
        ("scale-up-time", "value", 15.0),
        ("billing-granularity", "value", 60.0),
        ("retention-annotation", "value", 600.0),
    ],
)
def test_coreweave_profile_keeps_the_prose_as_claims(claim: str, part: str, seconds: float) -> None:
    assert load_profile("coreweave").claim_seconds(claim, part) == seconds


def test_fast_profile_finishes_scale_to_zero_in_seconds() -> None:
    from harness.findings import time_to_zero

    p = resolve(profile="fast").params
    assert (p.stable_window, p.panic_window, p.scale_down_delay) == (6.0, 3.0, 4.0)
    assert time_to_zero(p) == (15.0, 15.0)


def test_coreweave_findings_are_the_documented_contradictions() -> None:
    findings = {f.id: f for f in resolve(profile="coreweave").findings}
    assert set(findings) == {
        "tick-interval", "panic-window", "stable-window", "panic-threshold", "rate-period",
        "scale-down-step", "scale-to-zero-after", "legacy-annotation",
    }  # fmt: skip
    assert "round(180s x 10%) = 18s, not 24s" in findings["panic-window"].arithmetic
    assert "240s at 10%" in findings["panic-window"].arithmetic
    assert "128s != stable-window 180s" in findings["stable-window"].arithmetic
    assert "decisions every 2s, not every 15s" in findings["tick-interval"].arithmetic
    assert "180s + 60s + 30m = 34m" in findings["scale-to-zero-after"].arithmetic
    assert "floor(10/1.1) = 9" in findings["rate-period"].arithmetic
    assert "14m" in findings["legacy-annotation"].arithmetic


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_findings_follow_the_numbers_not_the_profile_name(tmp_path: Path) -> None:
    # 240 s at 10 % gives a 24 s panic window: the "24 s" claim holds, so no finding.
    path = write(tmp_path, """\
name: coreweave
config-autoscaler: {stable-window: 240s}
claims:
  panic-window: {quote: "panic over 24 seconds", unit: duration, value: 24s}
  stable-window: {quote: "the 240s stable window", unit: duration, value: 240s}
""")  # fmt: skip
    assert resolve(profile=path).findings == ()


def test_panic_window_finding_disappears_with_a_matching_percentage(tmp_path: Path) -> None:
    path = write(tmp_path, """\
name: x
config-autoscaler: {stable-window: 180s, panic-window-percentage: "13.3333"}
claims:
  panic-window: {quote: "24 seconds", unit: duration, value: 24s}
""")  # fmt: skip
    assert resolve(profile=path).params.panic_window == 24.0
    assert resolve(profile=path).findings == ()


@pytest.mark.parametrize(
    ("text", "key", "allowed"),
    [
        pytest.param("name: x\ncolour: red\n", "colour", "allowed keys here", id="unknown top key"),
        pytest.param("name: x\nconfig-autoscaler: {tick-intervall: 15s}\n",
                     "config-autoscaler.tick-intervall", "stable-window", id="unknown config key"),
        pytest.param("name: x\nconfig-autoscaler: {stable-window: 3s}\n",
                     "config-autoscaler.stable-window", "6s to 1h", id="window 3s"),
        pytest.param("name: x\nconfig-autoscaler: {max-scale-down-rate: 1}\n",
                     "config-autoscaler.max-scale-down-rate", "greater than 1.0", id="down rate 1"),
        pytest.param("name: x\nconfig-autoscaler: {scale-down-delay: 1 minute}\n",
                     "config-autoscaler.scale-down-delay", "a Go duration", id="bad duration"),
        pytest.param("name: x\nconfig-autoscaler: {stable-window: 60}\n",
                     "config-autoscaler.stable-window", "a Go duration", id="duration as number"),
        pytest.param("name: x\ninferenceservice: {minReplicas: -1}\n",
                     "inferenceservice.minReplicas", ">= 0", id="negative minReplicas"),
        pytest.param("name: x\nannotations: {autoscaling.knative.dev/windw: 10s}\n",
                     "annotations.autoscaling.knative.dev/windw", "autoscaling.knative.dev",
                     id="unknown annotation"),
        pytest.param("name: x\nannotations: {autoscaling.knative.dev/window: 3s}\n",
                     "annotations.autoscaling.knative.dev/window", "6s to 1h",
                     id="annotation out of range"),
        pytest.param("name: x\nclaims: {x: {quote: q, unit: duration, value: soon}}\n",
                     "claims.x.value", "not a duration", id="bad duration claim"),
        pytest.param("config-autoscaler: {}\n", "name", "required key is missing",
                     id="missing name"),
    ],
)  # fmt: skip
def test_bad_profiles_name_file_key_and_allowed_range(
    tmp_path: Path, text: str, key: str | None, allowed: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UserError) as exc:
        load_profile(path)
    assert exc.value.key == key
    assert str(path.name) in str(exc.value.where)
    assert allowed in str(exc.value)
    assert "\n" not in str(exc.value)


def test_unknown_profile_name_lists_the_shipped_ones() -> None:
    with pytest.raises(UserError, match="known profiles: coreweave, fast, knative-defaults"):
        load_profile("nope")


def test_missing_profile_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="file not found"):
        load_profile(tmp_path / "gone.yaml")


def test_profiles_are_found_from_any_working_directory(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert load_profile("fast").path == profiles_dir() / "fast.yaml"
