"""The declarative table of Knative's autoscaler keys: name, field, parser, allowed range.

One row per ``config-autoscaler`` key (:data:`CONFIG_KEYS`, after Knative's
``pkg/autoscaler/config/config.go``) and one per revision annotation
(:data:`ANNOTATIONS`, after ``pkg/apis/autoscaling/annotation_validation.go``). Each
rule lives in exactly one row; :func:`parse_config` and :func:`parse_annotations` walk
the tables, then apply the few rules that join two keys (``knative-kpa.md`` §1-2).

Scalars are parsed the way Go's ``strconv`` parses them (``ParseFloat``, ``ParseInt``
with 32 bits, ``ParseBool``) and durations like ``time.ParseDuration``, so a value
Knative rejects is rejected here with the same reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.durations import NS_PER_SECOND, DurationError, parse_duration_ns
from harness.errors import UserError
from harness.objects import AUTOSCALING_PREFIX as PREFIX
from harness.params import KPAParams

KPA_CLASS = "kpa.autoscaling.knative.dev"
HPA_CLASS = "hpa.autoscaling.knative.dev"
WINDOW_MIN = 6.0
WINDOW_MAX = 3600.0
INT32_MAX = 2**31 - 1

REMOVED_CONFIG_KEYS: dict[str, str] = {
    "tick-interval": (
        "removed in Knative v0.16 (#8099); the decider runs every 2s, a constant in "
        "multiscaler.go, and Knative ignores this key"
    ),
}
"""Keys that documentation still uses but Knative no longer reads (silently ignored)."""

_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SPECIAL_FLOAT = re.compile(r"[+-]?(?:inf|infinity|nan)", re.IGNORECASE)
_INT = re.compile(r"[+-]?[0-9]+")
_BOOLS = {
    "1": True, "t": True, "T": True, "true": True, "TRUE": True, "True": True,
    "0": False, "f": False, "F": False, "false": False, "FALSE": False, "False": False,
}  # fmt: skip


class ParseError(ValueError):
    """A raw string that the key's Go parser would not accept."""


def go_float(raw: str) -> float:
    """``strconv.ParseFloat(raw, 64)``: decimal or exponent form, ``Inf``; NaN is refused."""
    if _FLOAT.fullmatch(raw):
        return float(raw)
    if _SPECIAL_FLOAT.fullmatch(raw) and "nan" not in raw.lower():
        return float(raw)
    raise ParseError(f"{raw!r} is not a number")


def go_int32(raw: str) -> int:
    """``strconv.ParseInt(raw, 10, 32)``."""
    if not _INT.fullmatch(raw):
        raise ParseError(f"{raw!r} is not an integer")
    value = int(raw)
    if not -(2**31) <= value <= INT32_MAX:
        raise ParseError(f"{raw!r} is out of the int32 range")
    return value


def go_bool(raw: str) -> bool:
    """``strconv.ParseBool``: 1, t, T, true, TRUE, True and the matching false spellings."""
    if raw not in _BOOLS:
        raise ParseError(f"{raw!r} is not a boolean (true or false)")
    return _BOOLS[raw]


def go_duration(raw: str) -> float:
    """``time.ParseDuration``, in seconds."""
    try:
        return parse_duration_ns(raw) / NS_PER_SECOND
    except DurationError as exc:
        raise ParseError(str(exc)) from None


def go_string(raw: str) -> str:
    return raw


def whole_seconds(seconds: float) -> bool:
    return round(seconds * NS_PER_SECOND) % NS_PER_SECOND == 0


@dataclass(frozen=True, slots=True)
class Key:
    """One key: where it goes, how it is parsed, and the rule its value must meet."""

    name: str
    """The key as Knative spells it (ConfigMap key, or annotation key without the prefix)."""
    field: str
    """The :class:`~harness.params.KPAParams` field it sets."""
    parse: Callable[[str], Any]
    check: Callable[[Any], bool]
    allowed: str
    """The allowed range, in words, for error messages."""
    aliases: tuple[str, ...] = ()
    """Legacy spellings (annotations only), lower priority than :attr:`name`."""
    normalize: Callable[[Any], Any] | None = None
    """Applied after parsing and before the check (e.g. percent to fraction)."""

    @property
    def kind(self) -> str:
        return self.parse.__name__.removeprefix("go_")


def _any(_: Any) -> bool:
    return True


def _percent_or_fraction(v: float) -> float:
    """Knative: values > 1 are percent (85 -> 0.85); values <= 1 fractions (1.5 -> 0.015!)."""
    return v / 100.0 if v > 1.0 else v


CONFIG_KEYS: tuple[Key, ...] = (
    Key("container-concurrency-target-percentage", "container_concurrency_target_percentage",
        go_float, lambda v: 0 < v <= 1,
        "(0, 100]: values > 1 are percent (85 -> 0.85), values <= 1 a fraction (1.5 -> 0.015)",
        normalize=_percent_or_fraction),
    Key("container-concurrency-target-default", "container_concurrency_target_default",
        go_float, _any, "a number; times the target percentage at least 0.01"),
    Key("requests-per-second-target-default", "requests_per_second_target_default",
        go_float, lambda v: v >= 0.01, ">= 0.01"),
    Key("target-burst-capacity", "target_burst_capacity",
        go_float, lambda v: v >= 0 or v == -1, ">= 0, or exactly -1 (activator always in path)"),
    Key("stable-window", "stable_window",
        go_duration, lambda v: WINDOW_MIN <= v <= WINDOW_MAX and whole_seconds(v),
        "6s to 1h, whole seconds"),
    Key("panic-window-percentage", "panic_window_percentage",
        go_float, lambda v: 1 <= v <= 100, "1 to 100"),
    Key("panic-threshold-percentage", "panic_threshold_percentage",
        go_float, _any, "any number (unchecked in the ConfigMap; the annotation takes 110-1000)"),
    Key("max-scale-up-rate", "max_scale_up_rate",
        go_float, lambda v: v > 1.0, "greater than 1.0"),
    Key("max-scale-down-rate", "max_scale_down_rate",
        go_float, lambda v: v > 1.0, "greater than 1.0"),
    Key("enable-scale-to-zero", "enable_scale_to_zero", go_bool, _any, "true or false"),
    Key("scale-to-zero-grace-period", "scale_to_zero_grace_period",
        go_duration, lambda v: v > 0, "a positive duration"),
    Key("scale-to-zero-pod-retention-period", "scale_to_zero_pod_retention_period",
        go_duration, lambda v: v >= 0, ">= 0s (no upper bound in the ConfigMap)"),
    Key("scale-down-delay", "scale_down_delay",
        go_duration, lambda v: v >= 0 and whole_seconds(v),
        ">= 0s, whole seconds (no upper bound in the ConfigMap)"),
    Key("pod-autoscaler-class", "pod_autoscaler_class", go_string, _any, "any string"),
    Key("activator-capacity", "activator_capacity", go_float, lambda v: v >= 1, ">= 1"),
    Key("initial-scale", "initial_scale", go_int32, lambda v: v >= 0,
        ">= 0 (0 only with allow-zero-initial-scale: true)"),
    Key("allow-zero-initial-scale", "allow_zero_initial_scale", go_bool, _any, "true or false"),
    Key("min-scale", "min_scale", go_int32, lambda v: v >= 0,
        ">= 0 and <= max-scale when max-scale > 0"),
    Key("max-scale", "max_scale", go_int32, lambda v: v >= 0,
        ">= 0 (0 = unlimited); 1 to max-scale-limit when max-scale-limit > 0"),
    Key("max-scale-limit", "max_scale_limit", go_int32, lambda v: v >= 0, ">= 0 (0 = none)"),
)  # fmt: skip
"""``config-autoscaler`` keys, in the order of Knative's ``NewConfigFromMap``."""

ANNOTATIONS: tuple[Key, ...] = (
    Key("class", "pod_autoscaler_class", go_string,
        lambda v: not v.endswith(".knative.dev") or v in (KPA_CLASS, HPA_CLASS),
        f"{KPA_CLASS}, {HPA_CLASS}, or a class outside knative.dev"),
    Key("metric", "metric", go_string, lambda v: v in ("concurrency", "rps"),
        "concurrency or rps (KPA)"),
    Key("target", "target", go_float, lambda v: v >= 0.01, ">= 0.01"),
    Key("target-utilization-percentage", "target_utilization_percentage", go_float,
        lambda v: 0.01 <= v <= 1.0, "1 to 100", aliases=("targetUtilizationPercentage",),
        normalize=lambda v: v / 100.0),
    Key("target-burst-capacity", "target_burst_capacity", go_float,
        lambda v: v >= 0 or v == -1, ">= 0, or exactly -1", aliases=("targetBurstCapacity",)),
    Key("window", "stable_window", go_duration,
        lambda v: WINDOW_MIN <= v <= WINDOW_MAX and whole_seconds(v), "6s to 1h, whole seconds"),
    Key("panic-window-percentage", "panic_window_percentage", go_float,
        lambda v: 1 <= v <= 100, "1 to 100", aliases=("panicWindowPercentage",)),
    Key("panic-threshold-percentage", "panic_threshold_percentage", go_float,
        lambda v: 110 <= v <= 1000, "110 to 1000", aliases=("panicThresholdPercentage",)),
    Key("scale-down-delay", "scale_down_delay", go_duration,
        lambda v: 0 <= v <= WINDOW_MAX and whole_seconds(v), "0s to 1h, whole seconds",
        aliases=("scaleDownDelay",)),
    Key("scale-to-zero-pod-retention-period", "scale_to_zero_pod_retention_period", go_duration,
        lambda v: 0 <= v <= WINDOW_MAX, "0s to 1h", aliases=("scaleToZeroPodRetentionPeriod",)),
    Key("min-scale", "min_scale", go_int32, lambda v: v >= 0,
        ">= 0 and <= max-scale when max-scale != 0", aliases=("minScale",)),
    Key("max-scale", "max_scale", go_int32, lambda v: v >= 0,
        ">= 0 (0 = unlimited); 1 to max-scale-limit when max-scale-limit > 0",
        aliases=("maxScale",)),
    Key("initial-scale", "initial_scale", go_int32, lambda v: v >= 0,
        ">= 0 (0 only when the cluster sets allow-zero-initial-scale)", aliases=("initialScale",)),
    Key("activation-scale", "activation_scale", go_int32, lambda v: v >= 2,
        ">= 2, >= min-scale, and <= max-scale when max-scale != 0"),
    Key("metric-aggregation-algorithm", "metric_aggregation_algorithm", go_string,
        _any, "linear, weighted-exponential or weightedExponential (checked only when the "
        "class annotation names the KPA; see parse_annotations)",
        aliases=("metricAggregationAlgorithm",),
        normalize=lambda v: "weighted-exponential" if v == "weightedExponential" else v),
)  # fmt: skip
"""Revision annotations (``autoscaling.knative.dev/<name>``), kebab-case first."""

ALGORITHMS = ("linear", "weighted-exponential")
"""Aggregation algorithms the collector knows (after ``weightedExponential`` is normalised)."""

CONFIG_BY_NAME = {k.name: k for k in CONFIG_KEYS}
ANNOTATION_BY_FULL_NAME = {PREFIX + n: k for k in ANNOTATIONS for n in (k.name, *k.aliases)}


@dataclass(frozen=True, slots=True)
class Parsed:
    """Values set by one layer: field -> value, and field -> the key that set it."""

    values: dict[str, Any]
    keys: dict[str, str]
    ignored: tuple[str, ...] = ()
    """Keys present that Knative does not read (unknown or removed)."""
    aliases_used: tuple[tuple[str, str], ...] = ()
    """(legacy key, canonical key) pairs where a legacy camelCase alias supplied the value."""


def _value(key: Key, raw: Any, *, where: str | None, label: str) -> Any:
    text = raw if isinstance(raw, str) else _as_configmap_string(raw)
    try:
        value = key.parse(text)
    except ParseError as exc:
        raise UserError(f"{exc}; allowed: {key.allowed}", where=where, key=label) from None
    if key.normalize is not None:
        value = key.normalize(value)
    if not key.check(value):
        raise UserError(f"{text!r} is out of range; allowed: {key.allowed}", where=where, key=label)
    return value


def _as_configmap_string(raw: Any) -> str:
    """How a YAML scalar reads once it is a ConfigMap string (``true`` -> ``true``)."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, float) and raw.is_integer() and not math.isinf(raw):
        return repr(raw)
    return str(raw)


def parse_config(
    data: Mapping[str, Any], *, where: str | None = None, key_prefix: str = ""
) -> Parsed:
    """Parse ``config-autoscaler`` data as Knative's ``NewConfigFromMap`` + ``validate``.

    Unknown keys are ignored (and listed); ``_example`` is the shipped comment block.
    """
    values: dict[str, Any] = {}
    keys: dict[str, str] = {}
    for key in CONFIG_KEYS:
        if key.name in data and data[key.name] is not None:
            values[key.field] = _value(
                key, data[key.name], where=where, label=key_prefix + key.name
            )
            keys[key.field] = key.name
    ignored = tuple(k for k in data if k not in CONFIG_BY_NAME and k != "_example")
    _check_config_pairs(values, where=where, key_prefix=key_prefix)
    return Parsed(values, keys, ignored)


def _check_config_pairs(values: Mapping[str, Any], *, where: str | None, key_prefix: str) -> None:
    """The ConfigMap rules that join two keys (Knative ``validate()``)."""
    d = KPAParams()

    def get(field: str) -> Any:
        return values.get(field, getattr(d, field))

    pct, default = (
        get("container_concurrency_target_percentage"),
        get("container_concurrency_target_default"),
    )
    if pct * default < 0.01:
        raise UserError(
            f"target percentage {pct:g} x container-concurrency-target-default {default:g} = "
            f"{pct * default:g}; allowed: a product >= 0.01",
            where=where,
            key=key_prefix + "container-concurrency-target-default",
        )
    if get("initial_scale") == 0 and not get("allow_zero_initial_scale"):
        raise UserError(
            "0 needs allow-zero-initial-scale: true; allowed: >= 1 (or 0 with that flag)",
            where=where,
            key=key_prefix + "initial-scale",
        )
    limit, max_scale, min_scale = get("max_scale_limit"), get("max_scale"), get("min_scale")
    if limit > 0 and not 1 <= max_scale <= limit:
        raise UserError(
            f"{max_scale} is out of range; allowed: 1 to max-scale-limit ({limit})",
            where=where,
            key=key_prefix + "max-scale",
        )
    if max_scale > 0 and min_scale > max_scale:
        raise UserError(
            f"{min_scale} is out of range; allowed: 0 to max-scale ({max_scale})",
            where=where,
            key=key_prefix + "min-scale",
        )


def parse_annotations(
    annotations: Mapping[str, Any],
    *,
    allow_zero_initial_scale: bool = False,
    max_scale_limit: int = 0,
    where: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> Parsed:
    """Parse and validate revision annotations as Knative's webhook does.

    Keys may be full (``autoscaling.knative.dev/window``) or short (``window``). For each
    knob the kebab-case key wins over its legacy camelCase alias (``kmap.KeyPriority``).
    ``labels`` maps an annotation key to the name to show in errors (e.g. the
    InferenceService field it came from).
    """
    full = {(k if "/" in k else PREFIX + k): v for k, v in annotations.items()}
    labels = labels or {}
    values: dict[str, Any] = {}
    keys: dict[str, str] = {}
    aliases_used: list[tuple[str, str]] = []
    for key in ANNOTATIONS:
        for name in (key.name, *key.aliases):
            if PREFIX + name in full:
                ann = PREFIX + name
                values[key.field] = _value(key, full[ann], where=where, label=labels.get(ann, ann))
                keys[key.field] = ann
                if name != key.name:
                    aliases_used.append((ann, PREFIX + key.name))
                break
    ignored = tuple(k for k in full if k.startswith(PREFIX) and k not in ANNOTATION_BY_FULL_NAME)

    def label(field: str) -> str:
        return labels.get(keys[field], keys[field])

    lo, hi = values.get("min_scale", 0), values.get("max_scale", 0)
    if hi != 0 and hi < lo:
        raise UserError(
            f"max-scale={hi} is less than min-scale={lo}; allowed: max-scale >= min-scale or 0",
            where=where,
            key=label("max_scale"),
        )
    if "max_scale" in values and max_scale_limit > 0 and not 1 <= hi <= max_scale_limit:
        raise UserError(
            f"{hi} is out of range; allowed: 1 to max-scale-limit ({max_scale_limit})",
            where=where,
            key=label("max_scale"),
        )
    if "activation_scale" in values:
        act = values["activation_scale"]
        if act < lo or (hi != 0 and act > hi):
            raise UserError(
                f"{act} is out of range; allowed: min-scale ({lo}) to "
                f"max-scale ({hi or 'unlimited'})",
                where=where,
                key=label("activation_scale"),
            )
    algorithm = values.get("metric_aggregation_algorithm")
    if algorithm is not None and algorithm not in ALGORITHMS:
        # validateAlgorithm checks the value only when the class annotation names the KPA
        # ("custom autoscalers might have custom values"); otherwise Knative accepts it and
        # the collector, knowing no such algorithm, averages linearly.
        if full.get(PREFIX + "class") == KPA_CLASS:
            raise UserError(
                f"{algorithm!r} is out of range; allowed: linear, weighted-exponential or "
                "weightedExponential",
                where=where,
                key=label("metric_aggregation_algorithm"),
            )
        values["metric_aggregation_algorithm"] = "linear"
    if values.get("initial_scale") == 0 and not allow_zero_initial_scale:
        raise UserError(
            "0 is not allowed by the cluster; allowed: >= 1 (0 needs the ConfigMap's "
            "allow-zero-initial-scale: true)",
            where=where,
            key=label("initial_scale"),
        )
    return Parsed(values, keys, ignored, tuple(aliases_used))
