"""The effective value of every KPA knob of one revision, and where it came from.

:func:`resolve` layers a profile, the cluster's ``config-autoscaler`` ConfigMap, revision
annotations and InferenceService fields with Knative's precedence
annotation > ConfigMap > default (``knative-kpa.md`` §3, KServe's pass-through in
``kserve-locust-kind.md`` §2.4) into one :class:`~harness.params.KPAParams`, and returns
it as a :class:`Resolved`: the values, the source and key of each, the documentation
findings and the documented-vs-configured differences.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.files import display_path, read_yaml
from harness.findings import Finding, configuration_findings, documentation_findings
from harness.knobs import CONFIG_BY_NAME, PREFIX, parse_annotations, parse_config
from harness.params import KPAParams
from harness.profiles import Profile, load_profile

SOURCES = ("annotation", "isvc", "configmap", "profile", "default")
"""Where an effective value came from. ``isvc``: an InferenceService field (or the
``container_concurrency`` argument); ``profile``: the profile, standing in for the
cluster ConfigMap or the revision when those are not given."""

ConfigInput = Mapping[str, Any] | str | Path
IsvcInput = Mapping[str, Any] | str | Path


@dataclass(frozen=True, slots=True)
class Difference:
    """One knob whose configured value differs from the documented one."""

    field: str
    documented: Any
    configured: Any
    documented_source: str
    configured_source: str


@dataclass(frozen=True)
class Resolved:
    """The effective knobs of one revision, and where each value came from."""

    params: KPAParams
    sources: dict[str, str]
    """Field name -> one of :data:`SOURCES`."""
    keys: dict[str, str] = field(default_factory=dict)
    """Field name -> the exact key that set it (e.g. ``config-autoscaler: stable-window``)."""
    findings: tuple[Finding, ...] = ()
    differences: tuple[Difference, ...] = ()
    ignored_keys: tuple[str, ...] = ()
    """ConfigMap keys and ``autoscaling.knative.dev/*`` annotations Knative does not read."""
    documented: KPAParams | None = None
    """The profile's own values, when a profile was given."""
    profile: Profile | None = None


def resolve(
    *,
    profile: str | Path | Profile | None = None,
    configmap: ConfigInput | None = None,
    annotations: Mapping[str, Any] | None = None,
    isvc: IsvcInput | None = None,
    container_concurrency: int | None = None,
) -> Resolved:
    """Resolve the effective value and source of every knob.

    ``profile``: a shipped name (``coreweave``, ``knative-defaults``, ``fast``), a path, or
    a loaded :class:`~harness.profiles.Profile`. Its ``config-autoscaler`` plays the
    cluster ConfigMap when ``configmap`` is not given, and its ``inferenceservice`` and
    ``annotations`` play the revision when neither ``isvc`` nor ``annotations`` is given;
    otherwise it is the *documented* side and :attr:`Resolved.differences` lists what the
    configured side changes.
    ``configmap``: ``config-autoscaler`` data (string values), a whole ConfigMap manifest,
    or a YAML file path; unknown keys are ignored, as Knative does, and reported.
    ``annotations``: revision annotations, full or short keys, kebab-case or camelCase.
    ``isvc``: an InferenceService manifest (dict or YAML path), read the way KServe
    passes it to Knative. Bad values raise :class:`~harness.errors.UserError`.
    """
    prof = profile if isinstance(profile, Profile) or profile is None else load_profile(profile)

    if configmap is not None:
        data, where = _configmap_data(configmap)
        config_layer = _config_layer(data, where=where, source="configmap", prefix="")
    elif prof is not None:
        where = display_path(prof.path)
        config_layer = _config_layer(
            prof.config, where=where, source="profile", prefix="config-autoscaler."
        )
    else:
        config_layer = _Layer({}, {}, {}, ())

    if isvc is not None or annotations is not None:
        manifest, isvc_where = _isvc_manifest(isvc) if isvc is not None else (None, None)
        revision = _revision_layer(
            manifest,
            annotations or {},
            config_layer,
            where=isvc_where,
            isvc_source="isvc",
            ann_source="annotation",
            cc=container_concurrency,
        )
    elif prof is not None:
        revision = _revision_layer(
            prof.isvc_manifest() if prof.inferenceservice else None,
            prof.annotations,
            config_layer,
            where=display_path(prof.path),
            isvc_source="profile",
            ann_source="profile",
            cc=container_concurrency,
            isvc_prefix="inferenceservice.",
        )
    else:
        revision = _revision_layer(
            None,
            {},
            config_layer,
            where=None,
            isvc_source="isvc",
            ann_source="annotation",
            cc=container_concurrency,
        )

    values: dict[str, Any] = {}
    sources = {f.name: "default" for f in fields(KPAParams)}
    keys = {f.name: "Knative default" for f in fields(KPAParams)}
    for layer in (config_layer, revision):
        values.update(layer.values)
        sources.update(layer.sources)
        keys.update(layer.keys)
    params = KPAParams(**values)

    findings: list[Finding] = []
    documented: KPAParams | None = None
    differences: tuple[Difference, ...] = ()
    if prof is not None:
        configured = configmap is not None or isvc is not None or annotations is not None
        doc = None
        if configured:
            doc = resolve(profile=prof, container_concurrency=container_concurrency)
        documented = doc.params if doc is not None else params
        findings.extend(documentation_findings(prof, documented))
        if doc is not None:
            differences = tuple(
                Difference(
                    f.name,
                    getattr(doc.params, f.name),
                    getattr(params, f.name),
                    doc.sources[f.name],
                    sources[f.name],
                )
                for f in fields(KPAParams)
                if getattr(doc.params, f.name) != getattr(params, f.name)
            )
    ignored = (*config_layer.ignored, *revision.ignored)
    if configmap is not None or isvc is not None or annotations is not None:
        findings.extend(configuration_findings(config_layer.ignored, revision.aliases, params))
    return Resolved(
        params=params,
        sources=sources,
        keys=keys,
        findings=tuple(findings),
        differences=differences,
        ignored_keys=tuple(ignored),
        documented=documented,
        profile=prof,
    )


@dataclass(frozen=True, slots=True)
class _Layer:
    values: dict[str, Any]
    sources: dict[str, str]
    keys: dict[str, str]
    ignored: tuple[str, ...]
    aliases: tuple[tuple[str, str], ...] = ()


def _config_layer(
    data: Mapping[str, Any], *, where: str | None, source: str, prefix: str
) -> _Layer:
    parsed = parse_config(data, where=where, key_prefix=prefix)
    label = "config-autoscaler"
    return _Layer(
        dict(parsed.values),
        {f: source for f in parsed.values},
        {f: f"{label}: {k}" for f, k in parsed.keys.items()},
        parsed.ignored,
    )


def _configmap_data(configmap: ConfigInput) -> tuple[Mapping[str, Any], str | None]:
    """``config-autoscaler`` data from a data dict, a ConfigMap manifest, or a YAML file."""
    where: str | None = None
    doc: Any = configmap
    if isinstance(configmap, str | Path):
        where = str(configmap)
        doc = read_yaml(Path(configmap))
    if not isinstance(doc, Mapping):
        raise UserError("expected a mapping of config-autoscaler keys or a ConfigMap", where=where)
    manifest = doc.get("kind") == "ConfigMap" or "apiVersion" in doc
    bare_data = isinstance(doc.get("data"), Mapping) and not any(k in CONFIG_BY_NAME for k in doc)
    if manifest or bare_data:
        data = doc.get("data") or {}
        if not isinstance(data, Mapping):
            raise UserError("expected a mapping", where=where, key="data")
        return data, where
    return doc, where


def _isvc_manifest(isvc: IsvcInput) -> tuple[Mapping[str, Any], str | None]:
    if isinstance(isvc, str | Path):
        doc = read_yaml(Path(isvc))
        where: str | None = str(isvc)
    else:
        doc, where = isvc, None
    spec = doc.get("spec") if isinstance(doc, Mapping) else None
    if not isinstance(spec, Mapping) or not isinstance(spec.get("predictor"), Mapping):
        raise UserError("expected an InferenceService with spec.predictor", where=where)
    return doc, where


def _int_field(
    predictor: Mapping[str, Any], name: str, *, where: str | None, label: str, minimum: int
) -> int | None:
    raw = predictor.get(name)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < minimum:
        raise UserError(
            f"{raw!r} is not allowed; allowed: an integer >= {minimum}", where=where, key=label
        )
    return raw


def _revision_layer(
    manifest: Mapping[str, Any] | None,
    annotations: Mapping[str, Any],
    config: _Layer,
    *,
    where: str | None,
    isvc_source: str,
    ann_source: str,
    cc: int | None,
    isvc_prefix: str = "spec.predictor.",
) -> _Layer:
    """Revision annotations after KServe's pass-through (kserve-locust-kind.md §2.4)."""
    merged: dict[str, Any] = {}
    labels: dict[str, str] = {}
    isvc_fields: dict[str, str] = {}
    forced: dict[str, Any] = {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    keys: dict[str, str] = {}
    if manifest is not None:
        predictor = manifest["spec"]["predictor"]
        meta_ann = (manifest.get("metadata") or {}).get("annotations") or {}
        pred_ann = predictor.get("annotations") or {}
        for prefix, anns in (
            ("metadata.annotations.", meta_ann),
            (f"{isvc_prefix}annotations.", pred_ann),
        ):
            for k, v in anns.items():
                full = k if "/" in k else PREFIX + k
                merged[full] = v
                labels[full] = prefix + k
        # KServe overwrites: min-scale always (minReplicas, default 1), max-scale when
        # maxReplicas != 0, target and metric when scaleTarget / scaleMetric are set.
        lo = _int_field(
            predictor, "minReplicas", where=where, label=isvc_prefix + "minReplicas", minimum=0
        )
        hi = _int_field(
            predictor, "maxReplicas", where=where, label=isvc_prefix + "maxReplicas", minimum=0
        )
        target = _int_field(
            predictor, "scaleTarget", where=where, label=isvc_prefix + "scaleTarget", minimum=1
        )
        conc = _int_field(
            predictor,
            "containerConcurrency",
            where=where,
            label=isvc_prefix + "containerConcurrency",
            minimum=0,
        )
        metric = predictor.get("scaleMetric")
        forced[PREFIX + "min-scale"] = str(1 if lo is None else lo)
        isvc_fields[PREFIX + "min-scale"] = isvc_prefix + "minReplicas"
        if hi:
            forced[PREFIX + "max-scale"] = str(hi)
            isvc_fields[PREFIX + "max-scale"] = isvc_prefix + "maxReplicas"
        if target is not None:
            forced[PREFIX + "target"] = str(target)
            isvc_fields[PREFIX + "target"] = isvc_prefix + "scaleTarget"
        if metric is not None:
            forced[PREFIX + "metric"] = str(metric)
            isvc_fields[PREFIX + "metric"] = isvc_prefix + "scaleMetric"
        if conc is not None:
            values["container_concurrency"] = conc
            sources["container_concurrency"] = isvc_source
            keys["container_concurrency"] = isvc_prefix + "containerConcurrency"
        if lo is not None and hi and lo > hi:
            raise UserError(
                f"minReplicas {lo} > maxReplicas {hi}; allowed: minReplicas <= "
                "maxReplicas (or maxReplicas 0)",
                where=where,
                key=isvc_prefix + "minReplicas",
            )
    for k, v in annotations.items():
        full = k if "/" in k else PREFIX + k
        merged[full] = v
        labels[full] = full
    for k in forced:
        # A camelCase alias of a forced key would lose to the forced kebab key anyway.
        merged.pop(k, None)
    merged.update(forced)
    labels.update(isvc_fields)
    parsed = parse_annotations(
        merged,
        allow_zero_initial_scale=bool(config.values.get("allow_zero_initial_scale", False)),
        max_scale_limit=int(config.values.get("max_scale_limit", 0)),
        where=where,
        labels=labels,
    )
    for f, v in parsed.values.items():
        ann = parsed.keys[f]
        values[f] = v
        if ann in isvc_fields:
            sources[f] = isvc_source
            keys[f] = isvc_fields[ann]
        else:
            sources[f] = ann_source
            keys[f] = labels.get(ann, ann)
    if cc is not None:
        if cc < 0:
            raise UserError(
                f"{cc} is not allowed; allowed: an integer >= 0", key="container_concurrency"
            )
        values["container_concurrency"] = cc
        sources["container_concurrency"] = "isvc"
        keys["container_concurrency"] = "container_concurrency argument"
    return _Layer(values, sources, keys, parsed.ignored, parsed.aliases_used)
