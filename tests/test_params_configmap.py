"""The ``config-autoscaler`` ConfigMap is parsed and validated exactly as Knative does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.errors import UserError
from harness.params import KPAParams
from harness.resolve import resolve


def cm(**data: str) -> dict[str, str]:
    return {k.replace("_", "-"): v for k, v in data.items()}


@pytest.mark.parametrize(
    ("key", "raw", "field", "want"),
    [
        pytest.param("container-concurrency-target-percentage", "85",
                     "container_concurrency_target_percentage", 0.85, id="85 means 85 percent"),
        pytest.param("container-concurrency-target-percentage", "0.85",
                     "container_concurrency_target_percentage", 0.85, id="0.85 is a fraction"),
        pytest.param("container-concurrency-target-percentage", "1.5",
                     "container_concurrency_target_percentage", 0.015, id="1.5 means 1.5 percent"),
        pytest.param("container-concurrency-target-percentage", "100",
                     "container_concurrency_target_percentage", 1.0, id="100 percent is allowed"),
        pytest.param("container-concurrency-target-default", "10",
                     "container_concurrency_target_default", 10.0, id="cc target default"),
        pytest.param("requests-per-second-target-default", "0.01",
                     "requests_per_second_target_default", 0.01, id="rps default at its minimum"),
        pytest.param("target-burst-capacity", "-1", "target_burst_capacity", -1.0,
                     id="tbc -1 means activator always"),
        pytest.param("target-burst-capacity", "0", "target_burst_capacity", 0.0, id="tbc 0"),
        pytest.param("stable-window", "180s", "stable_window", 180.0, id="stable window"),
        pytest.param("stable-window", "6s", "stable_window", 6.0, id="stable window minimum"),
        pytest.param("stable-window", "1h", "stable_window", 3600.0, id="stable window maximum"),
        pytest.param("panic-window-percentage", "13.3", "panic_window_percentage", 13.3,
                     id="panic window percentage"),
        pytest.param("panic-threshold-percentage", "50", "panic_threshold_percentage", 50.0,
                     id="panic threshold is not range checked in the ConfigMap"),
        pytest.param("panic-threshold-percentage", "5000", "panic_threshold_percentage", 5000.0,
                     id="panic threshold above the annotation range is fine in the ConfigMap"),
        pytest.param("max-scale-up-rate", "20", "max_scale_up_rate", 20.0, id="up rate"),
        pytest.param("max-scale-down-rate", "1.1", "max_scale_down_rate", 1.1, id="down rate"),
        pytest.param("max-scale-down-rate", "2e0", "max_scale_down_rate", 2.0, id="exponent form"),
        pytest.param("enable-scale-to-zero", "false", "enable_scale_to_zero", False, id="bool"),
        pytest.param("enable-scale-to-zero", "F", "enable_scale_to_zero", False,
                     id="Go ParseBool spelling"),
        pytest.param("scale-to-zero-grace-period", "1ns", "scale_to_zero_grace_period", 1e-9,
                     id="grace just positive"),
        pytest.param("scale-to-zero-pod-retention-period", "30m",
                     "scale_to_zero_pod_retention_period", 1800.0, id="retention"),
        pytest.param("scale-to-zero-pod-retention-period", "2h",
                     "scale_to_zero_pod_retention_period", 7200.0,
                     id="retention has no 1h cap in the ConfigMap"),
        pytest.param("scale-to-zero-pod-retention-period", "1.5s",
                     "scale_to_zero_pod_retention_period", 1.5,
                     id="retention need not be whole seconds"),
        pytest.param("scale-down-delay", "60s", "scale_down_delay", 60.0, id="delay"),
        pytest.param("scale-down-delay", "2h", "scale_down_delay", 7200.0,
                     id="delay has no 1h cap in the ConfigMap"),
        pytest.param("pod-autoscaler-class", "hpa.autoscaling.knative.dev",
                     "pod_autoscaler_class", "hpa.autoscaling.knative.dev", id="class"),
        pytest.param("activator-capacity", "1", "activator_capacity", 1.0, id="activator capacity"),
        pytest.param("initial-scale", "3", "initial_scale", 3, id="initial scale"),
        pytest.param("max-scale", "10", "max_scale", 10, id="max scale"),
        pytest.param("min-scale", "2", "min_scale", 2, id="min scale"),
    ],
)  # fmt: skip
def test_each_configmap_key_parses_like_knative(key: str, raw: str, field: str, want: Any) -> None:
    r = resolve(configmap={key: raw})
    assert getattr(r.params, field) == want
    assert r.sources[field] == "configmap"
    assert r.keys[field] == f"config-autoscaler: {key}"


@pytest.mark.parametrize(
    ("data", "key", "allowed"),
    [
        pytest.param({"stable-window": "3s"}, "stable-window", "6s to 1h", id="window too short"),
        pytest.param({"stable-window": "2h"}, "stable-window", "6s to 1h", id="window too long"),
        pytest.param({"stable-window": "6500ms"}, "stable-window", "whole seconds",
                     id="window not whole seconds"),
        pytest.param({"stable-window": "60"}, "stable-window", "6s to 1h",
                     id="window without unit"),
        pytest.param({"max-scale-down-rate": "1"}, "max-scale-down-rate", "greater than 1.0",
                     id="down rate 1 is not > 1"),
        pytest.param({"max-scale-up-rate": "1.0"}, "max-scale-up-rate", "greater than 1.0",
                     id="up rate 1.0 is not > 1"),
        pytest.param({"max-scale-up-rate": "fast"}, "max-scale-up-rate", "greater than 1.0",
                     id="up rate not a number"),
        pytest.param({"container-concurrency-target-percentage": "0"},
                     "container-concurrency-target-percentage", "(0, 100]", id="percentage 0"),
        pytest.param({"container-concurrency-target-percentage": "101"},
                     "container-concurrency-target-percentage", "(0, 100]", id="percentage 101"),
        pytest.param({"container-concurrency-target-default": "0.001"},
                     "container-concurrency-target-default", ">= 0.01",
                     id="cc default times fraction below 0.01"),
        pytest.param({"requests-per-second-target-default": "0.001"},
                     "requests-per-second-target-default", ">= 0.01", id="rps default too small"),
        pytest.param({"target-burst-capacity": "-2"}, "target-burst-capacity", "exactly -1",
                     id="tbc below zero and not -1"),
        pytest.param({"panic-window-percentage": "0.5"}, "panic-window-percentage", "1 to 100",
                     id="panic percentage too small"),
        pytest.param({"panic-window-percentage": "101"}, "panic-window-percentage", "1 to 100",
                     id="panic percentage too large"),
        pytest.param({"scale-to-zero-grace-period": "0s"}, "scale-to-zero-grace-period",
                     "positive", id="grace zero"),
        pytest.param({"scale-to-zero-pod-retention-period": "-1s"},
                     "scale-to-zero-pod-retention-period", ">= 0s", id="retention negative"),
        pytest.param({"scale-down-delay": "-1s"}, "scale-down-delay", ">= 0s", id="delay negative"),
        pytest.param({"scale-down-delay": "1500ms"}, "scale-down-delay", "whole seconds",
                     id="delay not whole seconds"),
        pytest.param({"scale-down-delay": "10x"}, "scale-down-delay", "whole seconds",
                     id="delay malformed"),
        pytest.param({"activator-capacity": "0.5"}, "activator-capacity", ">= 1",
                     id="activator capacity below 1"),
        pytest.param({"enable-scale-to-zero": "yes"}, "enable-scale-to-zero", "true or false",
                     id="yes is not a Go bool"),
        pytest.param({"initial-scale": "0"}, "initial-scale", "allow-zero-initial-scale",
                     id="initial scale 0 without the flag"),
        pytest.param({"initial-scale": "1.5"}, "initial-scale", ">= 0", id="initial scale float"),
        pytest.param({"max-scale": "-1"}, "max-scale", ">= 0", id="max scale negative"),
        pytest.param({"max-scale-limit": "5", "max-scale": "6"}, "max-scale",
                     "1 to max-scale-limit (5)", id="max scale above limit"),
        pytest.param({"max-scale-limit": "5"}, "max-scale", "1 to max-scale-limit (5)",
                     id="limit set needs a max scale"),
        pytest.param({"max-scale": "3", "min-scale": "4"}, "min-scale", "0 to max-scale (3)",
                     id="min scale above max scale"),
        pytest.param({"max-scale-limit": "4294967296"}, "max-scale-limit", ">= 0",
                     id="beyond int32"),
    ],
)  # fmt: skip
def test_out_of_range_configmap_values_name_key_and_range(
    data: dict[str, str], key: str, allowed: str
) -> None:
    with pytest.raises(UserError) as exc:
        resolve(configmap=data)
    assert exc.value.key == key
    assert allowed in str(exc.value)
    assert "\n" not in str(exc.value)


def test_zero_initial_scale_is_fine_with_the_flag() -> None:
    r = resolve(configmap={"initial-scale": "0", "allow-zero-initial-scale": "true"})
    assert (r.params.initial_scale, r.params.allow_zero_initial_scale) == (0, True)


def test_unknown_configmap_keys_are_ignored_and_reported_like_knative() -> None:
    r = resolve(configmap={"tick-interval": "15s", "colour": "blue", "_example": "# docs"})
    assert r.params == KPAParams()
    assert r.ignored_keys == ("tick-interval", "colour")
    assert [f.id for f in r.findings] == ["tick-interval", "ignored-key"]
    assert all(f.side == "configured" for f in r.findings)


def test_empty_configmap_gives_knative_defaults() -> None:
    r = resolve(configmap={})
    assert r.params == KPAParams()
    assert set(r.sources.values()) == {"default"}


def test_yaml_scalars_read_as_configmap_strings() -> None:
    r = resolve(configmap={"max-scale-up-rate": 20, "enable-scale-to-zero": False,
                           "container-concurrency-target-percentage": 85})  # fmt: skip
    assert (r.params.max_scale_up_rate, r.params.enable_scale_to_zero) == (20.0, False)
    assert r.params.container_concurrency_target_percentage == 0.85


MANIFEST = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: config-autoscaler, namespace: knative-serving}
data:
  _example: |
    # stable-window: "60s"
  stable-window: "120s"
  max-scale-down-rate: "4"
"""


def test_configmap_manifest_dict_and_yaml_file_read_the_data(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "config-autoscaler.yaml"
    path.write_text(MANIFEST)
    for given in (yaml.safe_load(MANIFEST), str(path), path):
        r = resolve(configmap=given)
        assert (r.params.stable_window, r.params.max_scale_down_rate) == (120.0, 4.0)
        assert r.ignored_keys == ()


def test_configmap_file_with_only_data_section(tmp_path: Path) -> None:
    path = tmp_path / "cm.yaml"
    path.write_text("data:\n  stable-window: 30s\n")
    assert resolve(configmap=path).params.stable_window == 30.0


def test_missing_configmap_file_is_one_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="file not found"):
        resolve(configmap=tmp_path / "nope.yaml")


def test_malformed_configmap_yaml_is_one_user_error(tmp_path: Path) -> None:
    path = tmp_path / "cm.yaml"
    path.write_text("data: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML at line"):
        resolve(configmap=path)
