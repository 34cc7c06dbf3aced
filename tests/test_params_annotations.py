"""Revision annotations, InferenceService pass-through, and precedence of the sources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.errors import UserError
from harness.resolve import resolve

A = "autoscaling.knative.dev/"


@pytest.mark.parametrize(
    ("key", "raw", "field", "want"),
    [
        pytest.param("window", "6s", "stable_window", 6.0, id="window minimum"),
        pytest.param("window", "1h", "stable_window", 3600.0, id="window maximum"),
        pytest.param("panic-window-percentage", "20", "panic_window_percentage", 20.0,
                     id="panic window percentage"),
        pytest.param("panic-threshold-percentage", "110", "panic_threshold_percentage", 110.0,
                     id="panic threshold at its minimum"),
        pytest.param("panic-threshold-percentage", "1000", "panic_threshold_percentage", 1000.0,
                     id="panic threshold at its maximum"),
        pytest.param("target-utilization-percentage", "85", "target_utilization_percentage", 0.85,
                     id="utilization percent becomes a fraction"),
        pytest.param("target", "0.01", "target", 0.01, id="target at its minimum"),
        pytest.param("target-burst-capacity", "-1", "target_burst_capacity", -1.0, id="tbc -1"),
        pytest.param("scale-down-delay", "1h", "scale_down_delay", 3600.0, id="delay at 1h"),
        pytest.param("scale-to-zero-pod-retention-period", "1.5s",
                     "scale_to_zero_pod_retention_period", 1.5,
                     id="retention need not be whole seconds"),
        pytest.param("min-scale", "2", "min_scale", 2, id="min scale"),
        pytest.param("max-scale", "0", "max_scale", 0, id="max scale 0 is unlimited"),
        pytest.param("initial-scale", "3", "initial_scale", 3, id="initial scale"),
        pytest.param("activation-scale", "2", "activation_scale", 2, id="activation scale"),
        pytest.param("metric", "rps", "metric", "rps", id="metric rps"),
        pytest.param("class", "kpa.autoscaling.knative.dev", "pod_autoscaler_class",
                     "kpa.autoscaling.knative.dev", id="class"),
        pytest.param("metric-aggregation-algorithm", "weightedExponential",
                     "metric_aggregation_algorithm", "weighted-exponential",
                     id="weightedExponential value normalised"),
    ],
)  # fmt: skip
def test_each_annotation_parses_and_is_the_source(
    key: str, raw: str, field: str, want: Any
) -> None:
    r = resolve(annotations={A + key: raw})
    assert getattr(r.params, field) == want
    assert r.sources[field] == "annotation"
    assert r.keys[field] == A + key


@pytest.mark.parametrize(
    ("key", "raw", "allowed"),
    [
        pytest.param("window", "5s", "6s to 1h", id="window too short"),
        pytest.param("window", "61m", "6s to 1h", id="window too long"),
        pytest.param("window", "6.5s", "whole seconds", id="window not whole seconds"),
        pytest.param("panic-threshold-percentage", "105", "110 to 1000", id="threshold below 110"),
        pytest.param("panic-threshold-percentage", "1001", "110 to 1000",
                     id="threshold above 1000"),
        pytest.param("panic-window-percentage", "0", "1 to 100", id="panic percentage 0"),
        pytest.param("target-utilization-percentage", "0.85", "1 to 100",
                     id="annotation utilization is a percent, not a fraction"),
        pytest.param("target", "0", ">= 0.01", id="target zero"),
        pytest.param("target-burst-capacity", "-3", "exactly -1", id="tbc -3"),
        pytest.param("scale-down-delay", "61m", "0s to 1h", id="delay annotation capped at 1h"),
        pytest.param("scale-down-delay", "2500ms", "whole seconds", id="delay not whole"),
        pytest.param("scale-to-zero-pod-retention-period", "2h", "0s to 1h",
                     id="retention annotation capped at 1h"),
        pytest.param("min-scale", "-1", ">= 0", id="min scale negative"),
        pytest.param("initial-scale", "0", "allow-zero-initial-scale",
                     id="initial scale 0 not allowed by the cluster"),
        pytest.param("activation-scale", "1", ">= 2", id="activation scale 1"),
        pytest.param("metric", "cpu", "concurrency or rps", id="cpu is not a KPA metric"),
        pytest.param("class", "foo.knative.dev", "outside knative.dev", id="unknown knative class"),
        pytest.param("window", "soon", "6s to 1h", id="window malformed"),
    ],
)  # fmt: skip
def test_bad_annotations_name_key_and_range(key: str, raw: str, allowed: str) -> None:
    with pytest.raises(UserError) as exc:
        resolve(annotations={A + key: raw})
    assert exc.value.key == A + key
    assert allowed in str(exc.value)


def test_unknown_algorithm_refused_only_for_an_explicit_kpa_class() -> None:
    """validateAlgorithm skips revisions without a KPA class annotation (found by the
    upstream oracle, tests/fixtures/oracle/algorithm-without-class.yaml): Knative takes
    the value and the collector averages linearly."""
    with pytest.raises(UserError, match="linear, weighted-exponential") as exc:
        resolve(annotations={A + "class": "kpa.autoscaling.knative.dev",
                             A + "metric-aggregation-algorithm": "median"})  # fmt: skip
    assert exc.value.key == A + "metric-aggregation-algorithm"
    params = resolve(annotations={A + "metric-aggregation-algorithm": "median"}).params
    assert params.metric_aggregation_algorithm == "linear"


def test_cross_key_annotation_rules() -> None:
    with pytest.raises(UserError, match="max-scale=2 is less than min-scale=3"):
        resolve(annotations={A + "min-scale": "3", A + "max-scale": "2"})
    with pytest.raises(UserError, match=r"min-scale \(1\) to max-scale \(3\)"):
        resolve(annotations={A + "min-scale": "1", A + "max-scale": "3",
                             A + "activation-scale": "4"})  # fmt: skip
    with pytest.raises(UserError, match=r"1 to max-scale-limit \(5\)"):
        resolve(configmap={"max-scale-limit": "5", "max-scale": "5"},
                annotations={A + "max-scale": "6"})  # fmt: skip


def test_initial_scale_zero_annotation_allowed_when_the_cluster_allows_it() -> None:
    r = resolve(
        configmap={"allow-zero-initial-scale": "true"}, annotations={A + "initial-scale": "0"}
    )
    assert r.params.initial_scale == 0


@pytest.mark.parametrize(
    ("camel", "kebab", "field", "camel_value", "kebab_value", "want"),
    [
        pytest.param("scaleToZeroPodRetentionPeriod", "scale-to-zero-pod-retention-period",
                     "scale_to_zero_pod_retention_period", "10m", "5m", 300.0, id="retention"),
        pytest.param("minScale", "min-scale", "min_scale", "1", "2", 2, id="min scale"),
        pytest.param("maxScale", "max-scale", "max_scale", "7", "8", 8, id="max scale"),
        pytest.param("initialScale", "initial-scale", "initial_scale", "4", "5", 5, id="initial"),
        pytest.param("targetUtilizationPercentage", "target-utilization-percentage",
                     "target_utilization_percentage", "50", "60", 0.6, id="utilization"),
        pytest.param("targetBurstCapacity", "target-burst-capacity", "target_burst_capacity",
                     "-1", "0", 0.0, id="burst capacity"),
        pytest.param("panicWindowPercentage", "panic-window-percentage",
                     "panic_window_percentage", "20", "30", 30.0, id="panic window"),
        pytest.param("panicThresholdPercentage", "panic-threshold-percentage",
                     "panic_threshold_percentage", "300", "400", 400.0, id="panic threshold"),
        pytest.param("scaleDownDelay", "scale-down-delay", "scale_down_delay", "10s", "20s",
                     20.0, id="delay"),
        pytest.param("metricAggregationAlgorithm", "metric-aggregation-algorithm",
                     "metric_aggregation_algorithm", "linear", "weighted-exponential",
                     "weighted-exponential", id="algorithm"),
    ],
)  # fmt: skip
def test_kebab_case_wins_over_camel_case_and_camel_case_alone_works(
    camel: str, kebab: str, field: str, camel_value: str, kebab_value: str, want: Any
) -> None:
    both = resolve(annotations={A + camel: camel_value, A + kebab: kebab_value})
    assert getattr(both.params, field) == want
    assert both.keys[field] == A + kebab
    alone = resolve(annotations={A + camel: camel_value})
    assert alone.keys[field] == A + camel
    assert alone.sources[field] == "annotation"
    assert [f.id for f in alone.findings] == ["legacy-annotation"]


def test_camel_case_alias_is_validated_the_same_way() -> None:
    with pytest.raises(UserError) as exc:
        resolve(annotations={A + "scaleToZeroPodRetentionPeriod": "2h"})
    assert exc.value.key == A + "scaleToZeroPodRetentionPeriod"


def test_short_annotation_keys_are_accepted() -> None:
    assert resolve(annotations={"window": "30s"}).params.stable_window == 30.0


def test_unknown_autoscaling_annotations_are_reported_not_fatal() -> None:
    r = resolve(annotations={A + "tickInterval": "15s", "example.com/x": "1"})
    assert r.ignored_keys == (A + "tickInterval",)


# --- precedence: annotation > ConfigMap > default ---------------------------------


def test_annotation_beats_configmap_beats_default() -> None:
    r = resolve(
        configmap={"stable-window": "120s", "scale-down-delay": "30s"},
        annotations={A + "window": "90s"},
    )
    assert (r.params.stable_window, r.sources["stable_window"]) == (90.0, "annotation")
    assert (r.params.scale_down_delay, r.sources["scale_down_delay"]) == (30.0, "configmap")
    assert (r.params.max_scale_up_rate, r.sources["max_scale_up_rate"]) == (1000.0, "default")


def test_profile_plays_the_configmap_when_none_is_given() -> None:
    r = resolve(profile="coreweave")
    assert (r.params.stable_window, r.sources["stable_window"]) == (180.0, "profile")
    assert r.keys["stable_window"] == "config-autoscaler: stable-window"
    assert r.sources["panic_window_percentage"] == "default"
    assert (r.params.max_scale, r.sources["max_scale"]) == (10, "profile")
    assert r.differences == ()


def test_configmap_beside_a_profile_is_the_configured_side() -> None:
    cm = {"stable-window": "180s", "max-scale-down-rate": "2"}
    r = resolve(profile="coreweave", configmap=cm)
    assert (r.params.max_scale_down_rate, r.sources["max_scale_down_rate"]) == (2.0, "configmap")
    diffs = {d.field: (d.documented, d.configured, d.configured_source) for d in r.differences}
    assert diffs["max_scale_down_rate"] == (1.1, 2.0, "configmap")
    assert diffs["scale_down_delay"] == (60.0, 0.0, "default")
    assert "stable_window" not in diffs
    assert r.documented is not None and r.documented.max_scale_down_rate == 1.1
    # The profile's documented InferenceService still stands for the revision.
    assert (r.params.max_scale, r.sources["max_scale"]) == (10, "profile")


def test_annotation_in_a_profile_beats_the_configmap() -> None:
    from harness.profiles import Profile

    prof = Profile(name="p", path=Path("p.yaml"), annotations={A + "window": "30s"})
    r = resolve(profile=prof, configmap={"stable-window": "120s"})
    assert (r.params.stable_window, r.sources["stable_window"]) == (30.0, "profile")
    assert r.keys["stable_window"] == A + "window"
    diffs = {d.field for d in r.differences}
    assert diffs == set()  # the profile's annotation wins on both sides


# --- InferenceService pass-through (kserve-locust-kind.md §2.4) -------------------


def isvc(predictor: dict[str, Any], meta_ann: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "m", "annotations": meta_ann or {}},
        "spec": {"predictor": predictor},
    }


def test_isvc_fields_become_knobs_with_source_isvc() -> None:
    r = resolve(isvc=isvc({"minReplicas": 0, "maxReplicas": 10, "containerConcurrency": 1,
                           "scaleTarget": 5, "scaleMetric": "rps"}))  # fmt: skip
    p = r.params
    assert (p.min_scale, p.max_scale, p.container_concurrency, p.target, p.metric) == (
        0, 10, 1, 5.0, "rps")  # fmt: skip
    assert {r.sources[f] for f in ("min_scale", "max_scale", "container_concurrency",
                                   "target", "metric")} == {"isvc"}  # fmt: skip
    assert r.keys["min_scale"] == "spec.predictor.minReplicas"


def test_isvc_without_min_replicas_sets_min_scale_1_and_ignores_a_min_scale_annotation() -> None:
    r = resolve(isvc=isvc({"annotations": {A + "min-scale": "3"}}))
    assert (r.params.min_scale, r.sources["min_scale"]) == (1, "isvc")


def test_isvc_max_replicas_zero_leaves_max_scale_to_annotations() -> None:
    r = resolve(isvc=isvc({"maxReplicas": 0, "annotations": {A + "max-scale": "4"}}))
    assert (r.params.max_scale, r.sources["max_scale"]) == (4, "annotation")


def test_isvc_annotations_on_metadata_and_predictor_pass_through_predictor_wins() -> None:
    meta = {A + "window": "30s", A + "scale-down-delay": "10s"}
    r = resolve(isvc=isvc({"annotations": {A + "window": "90s"}}, meta_ann=meta))
    assert (r.params.stable_window, r.sources["stable_window"]) == (90.0, "annotation")
    assert r.keys["stable_window"] == "spec.predictor.annotations." + A + "window"
    assert r.params.scale_down_delay == 10.0


def test_bad_isvc_values_name_the_isvc_field(tmp_path: Path) -> None:
    path = tmp_path / "isvc.yaml"
    path.write_text("spec:\n  predictor:\n    minReplicas: -1\n")
    with pytest.raises(UserError) as exc:
        resolve(isvc=path)
    assert (exc.value.where, exc.value.key) == (str(path), "spec.predictor.minReplicas")
    with pytest.raises(UserError, match="minReplicas 3 > maxReplicas 2"):
        resolve(isvc=isvc({"minReplicas": 3, "maxReplicas": 2}))
    with pytest.raises(UserError) as exc2:
        resolve(isvc=isvc({"scaleMetric": "cpu"}))
    assert exc2.value.key == "spec.predictor.scaleMetric"


def test_container_concurrency_argument_overrides_the_isvc() -> None:
    r = resolve(isvc=isvc({"containerConcurrency": 4}), container_concurrency=2)
    assert r.params.container_concurrency == 2
    assert r.params.target_per_pod == pytest.approx(1.4)
