"""Parameter profiles: the documented autoscaler settings of one platform, as a YAML file.

A profile (``fixtures/profiles/<name>.yaml``) has four parts, all but ``name`` optional:

* ``config-autoscaler``: the documented cluster ConfigMap, keys exactly as Knative
  spells them (durations as Go strings, percentages as Knative takes them);
* ``inferenceservice``: the documented predictor fields (``minReplicas``,
  ``maxReplicas``, ``containerConcurrency``, ``scaleTarget``, ``scaleMetric``,
  ``annotations``);
* ``annotations``: revision annotations (``autoscaling.knative.dev/...``);
* ``claims``: the documentation's prose, kept as claims (a ``quote`` and the numbers
  in it) so that :mod:`harness.findings` can hold them against Knative's arithmetic.

:func:`load_profile` validates a file against ``fixtures/schemas/profile.schema.json``
(which :func:`profile_schema` generates from :mod:`harness.knobs`), then against
Knative's ranges; any problem is one :class:`~harness.errors.UserError` naming the
file, the key and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from harness.durations import GO_DURATION_PATTERN, DurationError, parse_duration
from harness.errors import UserError
from harness.files import check_schema, data_path, display_path, read_yaml
from harness.knobs import (
    ANNOTATION_BY_FULL_NAME,
    CONFIG_KEYS,
    REMOVED_CONFIG_KEYS,
    Key,
    parse_annotations,
    parse_config,
)

PROFILE_NAMES = ("coreweave", "knative-defaults", "fast")

GO_FLOAT_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
GO_INT_PATTERN = r"^[+-]?[0-9]+$"
GO_BOOL_VALUES = ["1", "t", "T", "true", "TRUE", "True", "0", "f", "F", "false", "FALSE", "False"]

CLAIM_DURATIONS = ("value", "min", "max")
"""Claim fields read as Go durations when the claim's ``unit`` is ``duration``."""


def profiles_dir() -> Path:
    return data_path("fixtures", "profiles")


def schema_path() -> Path:
    return data_path("fixtures", "schemas", "profile.schema.json")


@dataclass(frozen=True, slots=True)
class Profile:
    """One loaded, validated profile; values kept as written (ConfigMap spelling)."""

    name: str
    path: Path
    description: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    inferenceservice: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, Any] = field(default_factory=dict)
    claims: dict[str, dict[str, Any]] = field(default_factory=dict)
    acknowledged: dict[str, str] = field(default_factory=dict)
    """Documentation finding id -> why the profile's owner accepts it (reported, marked
    acknowledged, not failing the documentation verdict)."""

    def claim_seconds(self, claim: str, part: str = "value") -> float | None:
        """A duration claim's ``part`` in seconds, or None when absent."""
        raw = self.claims.get(claim, {}).get(part)
        return None if raw is None else parse_duration(str(raw))

    def isvc_manifest(self) -> dict[str, Any]:
        """The ``inferenceservice`` section as a minimal InferenceService manifest."""
        return {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": self.name},
            "spec": {"predictor": dict(self.inferenceservice)},
        }


def find_profile(name_or_path: str | Path) -> Path:
    """A shipped profile name (``coreweave``) or a path to a YAML file."""
    text = str(name_or_path)
    if isinstance(name_or_path, str) and "/" not in text and not text.endswith((".yaml", ".yml")):
        path = profiles_dir() / f"{text}.yaml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in profiles_dir().glob("*.yaml")))
            raise UserError(
                f"no such profile; known profiles: {known}, or give a file path", where=text
            )
        return path
    path = Path(name_or_path)
    if not path.is_file():
        raise UserError("file not found", where=str(path))
    return path


def load_profile(name_or_path: str | Path) -> Profile:
    """Find, read and validate a profile (schema, then Knative's ranges)."""
    path = find_profile(name_or_path)
    doc = read_yaml(path)
    where = display_path(path)
    validate_document(doc, where=where)
    config = dict(doc.get("config-autoscaler") or {})
    parsed = parse_config(config, where=where, key_prefix="config-autoscaler.")
    annotations = dict(doc.get("annotations") or {})
    isvc = dict(doc.get("inferenceservice") or {})
    allow_zero = bool(parsed.values.get("allow_zero_initial_scale", False))
    limit = int(parsed.values.get("max_scale_limit", 0))
    parse_annotations(
        annotations,
        allow_zero_initial_scale=allow_zero,
        max_scale_limit=limit,
        where=where,
        labels={k: f"annotations.{k}" for k in annotations},
    )
    isvc_ann = dict(isvc.get("annotations") or {})
    parse_annotations(
        isvc_ann,
        allow_zero_initial_scale=allow_zero,
        max_scale_limit=limit,
        where=where,
        labels={k: f"inferenceservice.annotations.{k}" for k in isvc_ann},
    )
    claims = {k: dict(v) for k, v in (doc.get("claims") or {}).items()}
    for cid, claim in claims.items():
        if claim.get("unit") != "duration":
            continue
        for part in CLAIM_DURATIONS:
            if part in claim:
                try:
                    parse_duration(str(claim[part]))
                except DurationError as exc:
                    raise UserError(f"{exc}", where=where, key=f"claims.{cid}.{part}") from None
    return Profile(
        name=str(doc["name"]),
        path=path,
        description=str(doc.get("description", "")),
        config=config,
        inferenceservice=isvc,
        annotations=annotations,
        claims=claims,
        acknowledged={str(k): str(v) for k, v in (doc.get("acknowledged") or {}).items()},
    )


def validate_document(doc: Any, *, where: str) -> None:
    """Check a profile document against the JSON Schema; the first error as one line."""
    check_schema(doc, profile_schema(), where=where)


def _key_schema(key: Key) -> dict[str, Any]:
    """Types and spelling of one ConfigMap key's value; ranges stay in :mod:`harness.knobs`."""
    kind = key.kind
    description = f"{key.allowed} (Knative {key.kind})"
    if kind == "duration":
        return {
            "type": "string",
            "pattern": GO_DURATION_PATTERN,
            "description": f"a Go duration, {key.allowed}",
        }
    if kind == "float":
        return {
            "description": description,
            "anyOf": [{"type": "number"}, {"type": "string", "pattern": GO_FLOAT_PATTERN}],
        }
    if kind == "int32":
        return {
            "description": description,
            "anyOf": [{"type": "integer"}, {"type": "string", "pattern": GO_INT_PATTERN}],
        }
    if kind == "bool":
        return {
            "description": description,
            "anyOf": [{"type": "boolean"}, {"enum": GO_BOOL_VALUES}],
        }
    return {"type": "string", "description": description}


@cache
def profile_schema() -> dict[str, Any]:
    """The profile JSON Schema (draft 2020-12), built from the key tables."""
    config_props: dict[str, Any] = {k.name: _key_schema(k) for k in CONFIG_KEYS}
    for name, why in REMOVED_CONFIG_KEYS.items():
        config_props[name] = {
            "type": "string",
            "pattern": GO_DURATION_PATTERN,
            "description": f"not a Knative key: {why}",
        }
    annotation_names = sorted(ANNOTATION_BY_FULL_NAME)
    scalar = {"type": ["string", "number", "boolean"]}
    annotations = {
        "type": "object",
        "description": "revision annotations, autoscaling.knative.dev/<key>",
        "propertyNames": {
            "enum": annotation_names,
            "description": "known autoscaling.knative.dev/* annotations",
        },
        "additionalProperties": scalar,
    }
    count = {"type": "integer", "minimum": 0, "description": "an integer >= 0"}
    claim = {
        "type": "object",
        "required": ["quote"],
        "additionalProperties": False,
        "properties": {
            "quote": {"type": "string", "description": "the documentation's words"},
            "unit": {"enum": ["duration", "percent", "factor", "count", "text"]},
            "value": scalar,
            "min": scalar,
            "max": scalar,
            "key": {"type": "string"},
            "subject": {"type": "string"},
            "spec": {"type": "object"},
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://example.invalid/harness/profile.schema.json",
        "title": "Autoscaler parameter profile",
        "description": "Documented KPA settings of one platform; generated by "
        "harness.profiles.profile_schema() from harness.knobs, do not edit by hand.",
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$"},
            "description": {"type": "string"},
            "source": {"type": "string"},
            "config-autoscaler": {
                "type": "object",
                "description": "config-autoscaler data, keys as Knative spells them",
                "additionalProperties": False,
                "properties": config_props,
            },
            "inferenceservice": {
                "type": "object",
                "description": "the predictor's autoscaling fields (KServe v1beta1)",
                "additionalProperties": False,
                "properties": {
                    "minReplicas": count,
                    "maxReplicas": count,
                    "containerConcurrency": count,
                    "scaleTarget": {
                        "type": "integer",
                        "minimum": 1,
                        "description": "an integer >= 1",
                    },
                    "scaleMetric": {
                        "enum": ["concurrency", "rps"],
                        "description": "concurrency or rps (Knative mode)",
                    },
                    "annotations": annotations,
                },
            },
            "annotations": annotations,
            "acknowledged": {
                "type": "object",
                "description": "documentation findings the profile's owner knows of, by "
                "finding id, with the reason: reported, marked acknowledged, and not "
                "failing the documentation verdict",
                "propertyNames": {
                    "pattern": "^[a-z][a-z0-9-]*$",
                    "description": "a finding id (harness params lists them)",
                },
                "additionalProperties": {"type": "string", "minLength": 1,
                                         "description": "why it is acknowledged"},
            },
            "claims": {
                "type": "object",
                "description": "the documentation's prose claims, by id",
                "propertyNames": {
                    "pattern": "^[a-z][a-z0-9-]*$",
                    "description": "a lower-case kebab-case claim id",
                },
                "additionalProperties": claim,
            },
        },
    }

