"""The preflight of ``--cluster current``, ``kind`` and ``upstream``: what the suites need of
the cluster (:mod:`harness.prerequisites`), read before any namespace is created, and one
line per unmet precondition saying what is wrong, which suites it stops and the exact
change that fixes it. Nothing is written to the cluster to "fix" it.

Read: the CRDs' served versions (API discovery), ``config-network``'s ingress class,
``config-features``' three podspec flags, the serving runtimes for ``harness-linear``
(on ``kind`` and ``upstream`` a ``ClusterServingRuntime``; on ``current`` the harness
puts a namespaced ``ServingRuntime`` into each namespace it creates, so only the CRD is needed) and
``config-observability``'s ``metrics-protocol`` (not a blocker: panic is then inferred
from the trajectory).

:meth:`Preflight.blocks` says why one InferenceService cannot be deployed here (its
fixture's reason), so a suite that needs it is skipped with that line while the others
run. :func:`cluster_setup` is what the report's configuration section lists.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.files import data_path
from harness.kube.client import Kube
from harness.prerequisites import (
    FEATURES_CONFIGMAP,
    KNATIVE_NAMESPACE,
    METRICS_PROTOCOL,
    MODEL_FORMAT,
    OBSERVABILITY_CONFIGMAP,
    PODSPEC_FLAGS,
    flag_allows,
    runtime_supports,
)

KNOWN_INGRESS = {"kourier": "kourier.ingress.networking.knative.dev",
                 "istio": "istio.ingress.networking.knative.dev"}
RUNTIME_PATH = f"fixtures/runtimes/{MODEL_FORMAT}.yaml"
ALL = ("every suite",)


@dataclass(frozen=True)
class Unmet:
    """One unmet precondition: what is wrong, the suites it stops, the fix."""

    what: str
    stops: tuple[str, ...]
    fix: str
    key: str = ""  # "flag:<flag>", "runtime", "crds", "ingress", "metrics"

    def line(self) -> str:
        stops = ", ".join(self.stops) if self.stops else "no suite"
        return f"preflight: {self.what}; stops {stops}; fix: {self.fix}"


@dataclass
class Preflight:
    mode: str
    unmet: list[Unmet] = field(default_factory=list)
    features: dict[str, str] = field(default_factory=dict)
    runtimes: list[str] = field(default_factory=list)
    metrics_protocol: str = "none"

    def lines(self) -> list[str]:
        return [u.line() for u in self.unmet]

    def blocks(self, isvc: Mapping[str, Any]) -> str | None:
        """Why ``isvc`` cannot be deployed on this cluster (the preflight's line), or None."""
        for u in self.unmet:
            if u.key in ("crds", "ingress"):
                return u.line()
            if u.key.startswith("field:") and u.key[6:] in pod_fields(isvc):
                return u.line()
            if u.key == "runtime" and model_format(isvc) == MODEL_FORMAT:
                return u.line()
        return None


def pod_fields(isvc: Mapping[str, Any]) -> set[str]:
    pred = ((isvc.get("spec") or {}).get("predictor") or {})
    return {f for f in PODSPEC_FLAGS if pred.get(f)}


def model_format(isvc: Mapping[str, Any]) -> str | None:
    model = ((isvc.get("spec") or {}).get("predictor") or {}).get("model")
    if not isinstance(model, Mapping):
        return None
    return str((model.get("modelFormat") or {}).get("name") or "") or None


def suites_using() -> dict[str, list[str]]:
    """Reference InferenceService (``fixtures/isvc/<name>.yaml``) -> the suites that deploy
    it (``suites/test_<suite>.py`` calling ``deploy_isvc("<name>"``, or naming it as a
    planned service, ``plan.Service("<name>"``: :mod:`harness.suite.plan`)."""
    out: dict[str, list[str]] = {}
    for path in sorted(data_path("suites").glob("test_*.py")):
        for name in re.findall(r'(?:deploy_isvc|Service)\(\s*"([^"]+)"', path.read_text()):
            suite = path.stem.removeprefix("test_")
            if suite not in out.setdefault(name, []):
                out[name].append(suite)
    return out


def _fixtures() -> dict[str, dict[str, Any]]:
    import yaml

    return {p.stem: yaml.safe_load(p.read_text())
            for p in sorted(data_path("fixtures", "isvc").glob("*.yaml"))}


def _stopped(pred: Any) -> tuple[str, ...]:
    users = suites_using()
    suites: list[str] = []
    for name, doc in _fixtures().items():
        if pred(doc):
            suites += [s for s in users.get(name, []) if s not in suites]
    return tuple(sorted(suites))


def _patch(cm: str, data: Mapping[str, str]) -> str:
    body = json.dumps({"data": dict(data)}, separators=(",", ":"))
    return f"kubectl -n {KNATIVE_NAMESPACE} patch configmap {cm} --type merge -p '{body}'"


def run_preflight(kube: Kube, mode: str, *, gateway: str | None = None) -> Preflight:
    """Read what the suites need and list what is missing (reads only)."""
    from harness.kube.apply import list_objects
    from harness.kube.crds import served
    from harness.kube.knative import read_knative_config
    from harness.kube.resources import (
        CLUSTER_SERVING_RUNTIMES,
        CONFIGURATIONS,
        INFERENCE_SERVICES,
        KSERVICES,
        PODAUTOSCALERS,
        REVISIONS,
        SERVING_RUNTIMES,
    )

    pf = Preflight(mode)
    runtime_res = CLUSTER_SERVING_RUNTIMES if mode in ("kind", "upstream") else SERVING_RUNTIMES
    needed = (INFERENCE_SERVICES, runtime_res, KSERVICES, CONFIGURATIONS, REVISIONS,
              PODAUTOSCALERS)
    missing = [r for r in needed if not served(kube, r)]
    if missing:
        names = ", ".join(f"{r.crd_name} {r.version}" for r in missing)
        pf.unmet.append(Unmet(
            f"CRD version(s) not served: {names}", ALL,
            "install KServe v0.20.0 and Knative Serving 1.21 (harness cluster up --kind "
            "does both)", "crds"))
        return pf

    network = read_knative_config(kube, "config-network") or {}
    cls = network.get("ingress-class") or network.get("ingress.class") or ""
    expected = KNOWN_INGRESS.get(gateway or "")
    if expected and cls != expected:
        pf.unmet.append(Unmet(
            f"config-network ingress-class is {cls or 'unset'!r}, but the ingress found is "
            f"{gateway}", ALL, _patch("config-network", {"ingress-class": expected}) +
            " (or pass --ingress-url for the gateway that serves ingress-class)", "ingress"))

    pf.features = read_knative_config(kube, FEATURES_CONFIGMAP) or {}
    for fld, flag in PODSPEC_FLAGS.items():
        value = pf.features.get(flag)
        if flag_allows(value):
            continue
        pf.unmet.append(Unmet(
            f"config-features {flag} is {value or 'unset (default disabled)'}: Knative's "
            f"webhook refuses spec.template.spec.{fld}",
            _stopped(lambda d, f=fld: f in pod_fields(d)),
            _patch(FEATURES_CONFIGMAP, {flag: "enabled"}), f"field:{fld}"))

    if mode in ("kind", "upstream"):
        found = [o for o in list_objects(kube, CLUSTER_SERVING_RUNTIMES)
                 + list_objects(kube, SERVING_RUNTIMES)
                 if runtime_supports(o.get("spec") or {})]
        pf.runtimes = [o["metadata"]["name"] for o in found]
        if not found:
            pf.unmet.append(Unmet(
                f"no ClusterServingRuntime supports modelFormat {MODEL_FORMAT} (KServe: "
                f"\"no runtime found to support predictor with model type: "
                f"{{{MODEL_FORMAT} <nil>}}\")",
                _stopped(lambda d: model_format(d) == MODEL_FORMAT),
                f"kubectl apply -f {RUNTIME_PATH}", "runtime"))
    else:
        pf.runtimes = [f"{MODEL_FORMAT} (ServingRuntime in each test namespace)"]

    observability = read_knative_config(kube, OBSERVABILITY_CONFIGMAP) or {}
    pf.metrics_protocol = observability.get(METRICS_PROTOCOL) or "none"
    if pf.metrics_protocol != "prometheus":
        pf.unmet.append(Unmet(
            f"config-observability metrics-protocol is {pf.metrics_protocol} (Knative 1.19+ "
            "default none): the autoscaler exports no kn_revision_panic_mode, panic is "
            "inferred from the trajectory", (),
            _patch(OBSERVABILITY_CONFIGMAP, {METRICS_PROTOCOL: "prometheus"})
            + f" && kubectl -n {KNATIVE_NAMESPACE} rollout restart deployment/autoscaler",
            "metrics"))
    return pf


def cluster_setup(kube: Kube, isvc_status: Mapping[str, Any]) -> dict[str, Any]:
    """What the report's configuration section lists: the runtime that serves the model,
    the three podspec flags and the metrics protocol, as read from the cluster."""
    from harness.kube.knative import read_knative_config

    features = read_knative_config(kube, FEATURES_CONFIGMAP) or {}
    observability = read_knative_config(kube, OBSERVABILITY_CONFIGMAP) or {}
    runtime = (isvc_status.get("clusterServingRuntimeName") and
               f"ClusterServingRuntime/{isvc_status['clusterServingRuntimeName']}") or (
        isvc_status.get("servingRuntimeName") and
        f"ServingRuntime/{isvc_status['servingRuntimeName']}") or "none (custom container)"
    return {"serving_runtime": runtime,
            **{flag: features.get(flag, "disabled") for flag in PODSPEC_FLAGS.values()},
            METRICS_PROTOCOL: observability.get(METRICS_PROTOCOL, "none")}
