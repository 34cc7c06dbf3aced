"""KServe's serving-runtime selection for ``predictor.model`` (KServe v0.20.0,
``pkg/apis/serving/v1beta1/predictor_model.go`` and ``components/predictor.go``).

- :func:`supporting_runtimes`: the namespace's ``ServingRuntimes`` first, then the
  ``ClusterServingRuntimes``, each list sorted by the lowest protocol version it speaks,
  newest first, then name; a runtime qualifies when it is not disabled, is not multi-model,
  lists the model's format (``mt:<name>`` or ``mt:<name>:<version>``; without an explicit
  ``runtime`` only formats with ``autoSelect: true`` count) and speaks the model's protocol
  (``v1`` when unset; a runtime without ``protocolVersions`` speaks ``v1`` and ``grpc-v2``).
  Cluster runtimes are then ordered by the format's ``priority`` (set before unset, higher
  first).
- :func:`select_runtime`: the runtime to use, or a :class:`NoRuntime` carrying KServe's
  words: the reconcile error (the ``InternalError`` event) and the model status's
  ``lastFailureInfo`` reason and message.
- :func:`runtime_container`: the runtime's ``kserve-container`` merged with the model's
  container (the model's fields win, ``args`` are concatenated, ``env`` merged by name)
  and ``{{.Name}}``/``{{.Namespace}}`` replaced from the InferenceService.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from harness.emulator.api.store import Store

SERVING_RUNTIMES = "serving.kserve.io/servingruntimes"
CLUSTER_SERVING_RUNTIMES = "serving.kserve.io/clusterservingruntimes"
CONTAINER = "kserve-container"
_PROTOCOL_ORDER = {"v1": 1, "v2": 2, "grpc-v1": 3, "grpc-v2": 4}


@dataclass(frozen=True)
class Runtime:
    name: str
    spec: dict[str, Any]
    cluster: bool


@dataclass(frozen=True)
class NoRuntime:
    """Why no runtime serves the model, in KServe's words."""

    error: str       # the reconcile error, recorded as a Warning event "InternalError"
    reason: str      # status.modelStatus.lastFailureInfo.reason
    message: str     # status.modelStatus.lastFailureInfo.message


def model_format_text(fmt: dict[str, Any]) -> str:
    """Go's ``%v`` of KServe's ``ModelFormat{Name, Version *string}``: ``{name <nil>}``.

    (A set version prints as a pointer address in Go; the emulator prints the value.)
    """
    version = fmt.get("version")
    return f"{{{fmt.get('name', '')} {'<nil>' if version is None else version}}}"


def _protocol_priority(spec: dict[str, Any]) -> int:
    versions = spec.get("protocolVersions") or []
    if not versions:
        return 0  # constants.Unknown
    return min(_PROTOCOL_ORDER.get(str(v), 0) for v in versions)


def _speaks(spec: dict[str, Any], protocol: str) -> bool:
    versions = spec.get("protocolVersions") or []
    if not versions:
        return protocol in ("v1", "grpc-v2")
    return protocol in versions


def _format_labels(spec: dict[str, Any], explicit: bool) -> set[str]:
    out: set[str] = set()
    for f in spec.get("supportedModelFormats") or []:
        if explicit or f.get("autoSelect") is True:
            out.add(f"mt:{f.get('name')}")
            if f.get("version") is not None:
                out.add(f"mt:{f.get('name')}:{f.get('version')}")
    return out


def supports_model(spec: dict[str, Any], model: dict[str, Any], *, explicit: bool) -> bool:
    fmt = model.get("modelFormat") or {}
    label = f"mt:{fmt.get('name')}" + (f":{fmt['version']}" if fmt.get("version") is not None
                                       else "")
    return label in _format_labels(spec, explicit)


def _sorted(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # protocol priority ascending, then creationTimestamp descending, then name
    by_name = sorted(objs, key=lambda o: o["metadata"]["name"])
    by_time = sorted(by_name, key=lambda o: o["metadata"].get("creationTimestamp", ""),
                     reverse=True)
    return sorted(by_time, key=lambda o: _protocol_priority(o.get("spec") or {}))


def _priority(spec: dict[str, Any], fmt_name: str) -> int | None:
    for f in spec.get("supportedModelFormats") or []:
        if f.get("name") == fmt_name and f.get("priority") is not None:
            return int(f["priority"])
    return None


def supporting_runtimes(store: Store, namespace: str, model: dict[str, Any]
                        ) -> list[Runtime]:
    """KServe's ``GetSupportingRuntimes`` (single-model runtimes)."""
    protocol = str(model.get("protocolVersion") or "v1")

    def ok(spec: dict[str, Any]) -> bool:
        return (not spec.get("disabled") and not spec.get("multiModel")
                and supports_model(spec, model, explicit=False) and _speaks(spec, protocol))

    local = [Runtime(o["metadata"]["name"], o.get("spec") or {}, False)
             for o in _sorted(store.list(SERVING_RUNTIMES, namespace=namespace)["items"])
             if ok(o.get("spec") or {})]
    cluster = [Runtime(o["metadata"]["name"], o.get("spec") or {}, True)
               for o in _sorted(store.list(CLUSTER_SERVING_RUNTIMES)["items"])
               if ok(o.get("spec") or {})]
    fmt_name = str((model.get("modelFormat") or {}).get("name", ""))
    with_priority = [r for r in cluster if _priority(r.spec, fmt_name) is not None]
    with_priority.sort(key=lambda r: -(_priority(r.spec, fmt_name) or 0))
    cluster = with_priority + [r for r in cluster if _priority(r.spec, fmt_name) is None]
    return local + cluster


def select_runtime(store: Store, namespace: str, model: dict[str, Any]) -> Runtime | NoRuntime:
    """The runtime for ``predictor.model`` (explicit ``runtime`` or the first supporting)."""
    name = model.get("runtime")
    if name:
        obj = store.try_get(SERVING_RUNTIMES, name, namespace=namespace)
        cluster = obj is None
        if obj is None:
            obj = store.try_get(CLUSTER_SERVING_RUNTIMES, name)
        if obj is None:
            return NoRuntime(f'No ServingRuntimes or ClusterServingRuntimes with the name: '
                             f'{name}', "RuntimeNotRecognized",
                             "Waiting for runtime to become available")
        spec = obj.get("spec") or {}
        if spec.get("disabled"):
            return NoRuntime(f"specified runtime {name} is disabled", "RuntimeDisabled",
                             "Specified runtime is disabled")
        if model.get("protocolVersion") and not _speaks(spec, str(model["protocolVersion"])):
            return NoRuntime(f"specified runtime {name} does not support specified protocol "
                             "version", "NoSupportingRuntime",
                             "Specified runtime does not support specified protocol version")
        if not supports_model(spec, model, explicit=True):
            return NoRuntime(f"specified runtime {name} does not support specified "
                             "framework/version", "NoSupportingRuntime",
                             "Specified runtime does not support specified framework/version")
        return Runtime(name, spec, cluster)
    found = supporting_runtimes(store, namespace, model)
    if not found:
        return NoRuntime("no runtime found to support predictor with model type: "
                         f"{model_format_text(model.get('modelFormat') or {})}",
                         "NoSupportingRuntime",
                         "No runtime found to support specified framework/version")
    return found[0]


_PLACEHOLDER = re.compile(r"\{\{\s*\.(Name|Namespace)\s*\}\}")


def _replace(value: Any, meta: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: str(meta.get(m.group(1).lower(), "")), value)
    if isinstance(value, list):
        return [_replace(v, meta) for v in value]
    if isinstance(value, dict):
        return {k: _replace(v, meta) for k, v in value.items()}
    return value


def runtime_container(runtime: Runtime, model_container: dict[str, Any],
                      isvc_meta: dict[str, Any]) -> dict[str, Any]:
    """KServe's ``MergeRuntimeContainers`` then ``ReplacePlaceholders``."""
    containers = runtime.spec.get("containers") or []
    base = next((c for c in containers if c.get("name") == CONTAINER),
                containers[0] if containers else {})
    merged = copy.deepcopy(base)
    for key, value in model_container.items():
        if key == "args":
            continue
        if key == "env":
            env = {e.get("name"): e for e in merged.get("env") or []}
            for e in value or []:
                env[e.get("name")] = copy.deepcopy(e)
            merged["env"] = list(env.values())
        elif key == "resources" and isinstance(value, dict):
            res = copy.deepcopy(merged.get("resources") or {})
            for part, q in value.items():
                res[part] = {**(res.get(part) or {}), **(q or {})}
            merged["resources"] = res
        else:
            merged[key] = copy.deepcopy(value)
    merged["args"] = list(base.get("args") or []) + list(model_container.get("args") or [])
    if not merged["args"]:
        merged.pop("args")
    merged["name"] = CONTAINER
    return _replace(merged, isvc_meta)
