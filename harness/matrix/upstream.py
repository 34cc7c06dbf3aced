"""The real mutation matrix: each check against a change to a real cluster's configuration.

The emulator's mutations (:mod:`harness.emulator.mutations`) make the emulator misbehave;
these make real Knative Serving and KServe do something other than what the claim
(:data:`harness.matrix.scenarios.PROFILE` plus each scenario's InferenceService) says,
with the configuration a user could really get wrong (:data:`MUTATIONS`):

* ``config-drift``: ``config-autoscaler`` set unlike the profile (Knative reloads it
  live). Knative's ``max-scale-up-rate`` and ``max-scale-down-rate`` exist only there,
  and any difference there is what check 1 exists to catch, while the behavioural checks
  judge the cluster against its *effective* configuration (the ConfigMap read back); so a
  cluster-wide knob can fail only check 1, and the other checks are broken per revision:
* a per-revision change to one scenario's InferenceService that its claim does not know
  about (an annotation, ``minReplicas``, the model, the GPU affinity): the checks judge
  against the claimed InferenceService (the scenario's manifest), the cluster runs the
  changed one;

Taking the activator away altogether does not lose a warm revision's requests on real
Knative: with no activator endpoints the ServerlessService is forced into Serve mode
(pods straight behind the public Service); from zero nothing would poke the autoscaler,
so the cold start would fail too. ``burst-capacity-0`` takes it out of one revision's
path instead (``target-burst-capacity`` 0), which loses requests only under overload.

:func:`record_all` records every configuration on ONE running cluster, in waves: the
baseline (every scenario of :func:`~harness.matrix.scenarios.manifests`, ``rise``
included), then every per-revision mutation at once (each its own scenario in its own
namespace; the row's other scenarios are the baseline's, which ran the very same
objects: :attr:`~harness.matrix.scenarios.Run.shared` names them), then each
cluster-wide change in turn with every scenario, restored afterwards. Each configuration becomes a
:class:`~harness.matrix.scenarios.Run` (saved with ``Run.save``, replayed without a
cluster by :mod:`harness.matrix.evaluation`).
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.matrix.scenarios import AS, Run, ScenarioRecording, manifests

KNATIVE_NS = "knative-serving"


def _annotate(key: str, value: str) -> Callable[[dict[str, Any]], None]:
    def change(isvc: dict[str, Any]) -> None:
        isvc["metadata"].setdefault("annotations", {})[AS + key] = value
    return change


def _min_replicas(n: int) -> Callable[[dict[str, Any]], None]:
    def change(isvc: dict[str, Any]) -> None:
        isvc["spec"]["predictor"]["minReplicas"] = n
    return change


def _model_load_time(value: str) -> Callable[[dict[str, Any]], None]:
    def change(isvc: dict[str, Any]) -> None:
        model = isvc["spec"]["predictor"]["model"]
        model.setdefault("env", []).append({"name": "MODEL_LOAD_TIME", "value": value})
        # Ready only once the model is loaded: without a probe Knative's default (TCP on
        # the port) routes to a server that answers 503 while it loads
        model["readinessProbe"] = {"httpGet": {"path": "/v2/health/ready", "port": 8080},
                                   "periodSeconds": 1}
    return change


def _no_affinity(isvc: dict[str, Any]) -> None:
    isvc["spec"]["predictor"].pop("affinity", None)


@dataclass(frozen=True)
class RealMutation:
    """One change to a real cluster: ``name``, the check it must fail, what it does, and
    how: ``scenario`` + ``change`` (the one InferenceService it edits, in place), or
    ``config`` (``config-autoscaler`` keys set for its wave)."""

    name: str
    check: str
    does: str
    scenario: str | None = None
    change: Callable[[dict[str, Any]], None] | None = None
    config: Mapping[str, str] = field(default_factory=dict)

    @property
    def cluster_wide(self) -> bool:
        return bool(self.config)


MUTATIONS: dict[str, RealMutation] = {m.name: m for m in (
    RealMutation("config-drift", "configuration",
                 "config-autoscaler's max-scale-down-rate 3 (the profile: 1.1), set live",
                 config={"max-scale-down-rate": "3"}),
    RealMutation("min-replicas", "autoscaling-enabled",
                 "the fixed service runs with minReplicas 1 (claimed: minReplicas == "
                 "maxReplicas == 2)", "fixed", _min_replicas(1)),
    RealMutation("panic-threshold", "panic-entry",
                 "panic-threshold-percentage 1000 on the revision (claimed 200: the 6x "
                 "burst needs 600)", "panic", _annotate("panic-threshold-percentage", "1000")),
    RealMutation("activation-scale", "scale-up-rate",
                 "activation-scale 3 on the revision: 0 -> 3 pods in one decision (claimed "
                 "1: at most 2 from zero at max-scale-up-rate 1.5)", "rise",
                 _annotate("activation-scale", "3")),
    RealMutation("scale-down-delay", "scale-down",
                 "scale-down-delay 0s on the revision (claimed 6s)", "scale-delay",
                 _annotate("scale-down-delay", "0s")),
    RealMutation("retention", "scale-to-zero",
                 "scale-to-zero-pod-retention-period 0s on the revision (claimed 10s)",
                 "cold", _annotate("scale-to-zero-pod-retention-period", "0s")),
    RealMutation("slow-model", "cold-start",
                 "the model takes 12 s to load (MODEL_LOAD_TIME, the pod Ready once it is "
                 "loaded; the claim: a small model in 5 s)", "cold", _model_load_time("12s")),
    RealMutation("no-affinity", "gpu-placement",
                 "the GPU service without its node affinity (the scheduler picks the A100 "
                 "node)", "gpu", _no_affinity),
    RealMutation("burst-capacity-0", "no-request-lost",
                 "target-burst-capacity 0 on the revision: the activator leaves the path "
                 "once a pod is Ready, and a burst overflows queue-proxy's queue "
                 "(10 x containerConcurrency) with 503s", "rise",
                 _annotate("target-burst-capacity", "0")),
)}

CONFIGS: tuple[str, ...] = ("baseline", *MUTATIONS)
TARGETS: dict[str, str] = {m.name: m.check for m in MUTATIONS.values()}
"""Configuration -> the check it must fail (for :func:`harness.matrix.evaluation.expected`)."""


def check_configs(names: Iterable[str]) -> list[str]:
    """The configuration names, validated (one line naming the known ones otherwise)."""
    out = []
    for name in names:
        if name not in CONFIGS:
            raise UserError(f"unknown configuration {name!r}; known: {', '.join(CONFIGS)}")
        if name not in out:
            out.append(name)
    return out


def applied(mutation: RealMutation, claim: dict[str, Any]) -> dict[str, Any]:
    """The InferenceService the cluster gets under ``mutation`` for a scenario's claim."""
    doc = copy.deepcopy(claim)
    if mutation.change is not None:
        mutation.change(doc)
    return doc


# ---------------------------------------------------------------- the cluster's config


def _read_config(api: Any) -> dict[str, str]:
    from kubernetes import client as k8s

    cm = k8s.CoreV1Api(api).read_namespaced_config_map("config-autoscaler", KNATIVE_NS)
    return dict(cm.data or {})


def _set_config(api: Any, data: Mapping[str, str | None]) -> None:
    """Merge-patch ``config-autoscaler`` (a None value removes the key)."""
    from kubernetes import client as k8s

    k8s.CoreV1Api(api).patch_namespaced_config_map(
        "config-autoscaler", KNATIVE_NS, {"data": dict(data)})


def _delete_namespaces(api: Any, names: Iterable[str]) -> None:
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    core = k8s.CoreV1Api(api)
    for ns in names:
        try:
            core.delete_namespace(ns)
        except ApiException as exc:
            if exc.status != 404:
                raise


# ---------------------------------------------------------------- recording


@dataclass
class _Job:
    config: str
    scenario: str
    claim: dict[str, Any]
    applied: dict[str, Any]
    namespace: str


STAGES: tuple[tuple[str, ...], ...] = (("cold",), ("gpu", "rise", "fixed", "panic"),
                                        ("scale-rate",), ("scale-delay",))
"""The order of a wave's scenarios: the cold starts first (timed against a claim: other
pods starting beside them on this machine's few cores would be in their time), then the
rest at once as soon as the cold requests are answered, the two scale-down scenarios last
and one after the other (their bursts, overlapping each other or the others, slowed the
responses on a 2-core host until the measured load no longer matched what Knative saw)."""


def _wave(driver: Any, jobs: list[_Job]) -> dict[tuple[str, str], ScenarioRecording]:
    """The jobs in :data:`STAGES` order."""
    async def main() -> list[ScenarioRecording]:
        colds = {id(j): asyncio.Event() for j in jobs if j.scenario == "cold"}
        done = {id(j): asyncio.Event() for j in jobs}
        stage = {s: i for i, names in enumerate(STAGES) for s in names}

        def after(j: _Job) -> list[asyncio.Event]:
            k = stage[j.scenario]
            if k == 0:
                return []
            if k == 1:
                return list(colds.values())
            return [done[id(o)] for o in jobs if stage[o.scenario] == k - 1] or \
                [done[id(o)] for o in jobs if stage[o.scenario] < k]

        async def one(j: _Job) -> ScenarioRecording:
            try:
                return await driver.scenario(j.scenario, j.claim, applied=j.applied,  # type: ignore[no-any-return]
                                             namespace=j.namespace,
                                             cold_done=colds.get(id(j)), after=after(j))
            finally:
                done[id(j)].set()
                if id(j) in colds:
                    colds[id(j)].set()

        return list(await asyncio.gather(*(one(j) for j in jobs)))

    out = asyncio.run(main())
    return {(j.config, j.scenario): r for j, r in zip(jobs, out, strict=True)}


def record_all(api: Any, ingress_url: str, configs: Iterable[str] = CONFIGS, *,
               say: Callable[[str], None] = print,
               saved: Callable[[str, Run], None] | None = None) -> dict[str, Run]:
    """Record ``configs`` on the running cluster behind ``api`` (see the module docstring);
    the cluster's configuration is restored after each cluster-wide change. ``saved`` is
    called with each configuration's Run as soon as it is complete."""
    from kubernetes import client as k8s

    from harness.matrix.kube_target import KubeTarget
    from harness.matrix.scenarios import _Driver

    names = check_configs(configs)
    claims = manifests(rise=True)
    target = KubeTarget.connect(api, ingress_url)
    driver = _Driver(target, api)
    nodes = {n.metadata.name: dict(n.metadata.labels or {})
             for n in k8s.CoreV1Api(api).list_node().items}
    runs: dict[str, Run] = {}

    def finish(config: str, run: Run) -> None:
        runs[config] = run
        if saved is not None:
            saved(config, run)

    def timed(what: str, jobs: list[_Job]) -> dict[tuple[str, str], ScenarioRecording]:
        t0 = time.monotonic()
        say(f"matrix: {what}: {len(jobs)} scenario(s) ...")
        try:
            got = _wave(driver, jobs)
        finally:
            _delete_namespaces(api, [j.namespace for j in jobs])
        say(f"matrix: {what}: done in {time.monotonic() - t0:.0f} s")
        return got

    per_revision = [n for n in names if n in MUTATIONS and not MUTATIONS[n].cluster_wide]
    need_baseline = "baseline" in names or bool(per_revision)
    base: dict[str, ScenarioRecording] = {}
    if need_baseline:
        config = _read_config(api)
        got = timed("baseline", [_Job("baseline", s, c, c, f"mx-{s}")
                                 for s, c in claims.items()])
        base = {s: got[("baseline", s)] for s in claims}
        if "baseline" in names:
            finish("baseline", Run([], config, nodes, dict(base)))
    if per_revision:
        config = _read_config(api)
        jobs = []
        for name in per_revision:
            m = MUTATIONS[name]
            assert m.scenario is not None
            claim = claims[m.scenario]
            jobs.append(_Job(name, m.scenario, claim, applied(m, claim), f"mx-{name}"))
        got = timed("per-revision mutations", jobs)
        for name in per_revision:
            scenario = MUTATIONS[name].scenario
            timelines = {**base, scenario: got[(name, scenario)]}
            finish(name, Run([name], config, nodes, timelines,
                             shared=sorted(s for s in timelines if s != scenario)))
    for name in (n for n in names if n in MUTATIONS and MUTATIONS[n].cluster_wide):
        finish(name, _cluster_wide(api, MUTATIONS[name], claims, nodes, timed))
    return runs


def _cluster_wide(api: Any, m: RealMutation, claims: dict[str, dict[str, Any]],
                  nodes: dict[str, dict[str, str]], timed: Callable[..., Any]) -> Run:
    """Every scenario with ``config-autoscaler`` changed; the old values put back after."""
    before = _read_config(api)
    _set_config(api, m.config)
    try:
        time.sleep(2.0)   # the autoscaler's informer; revisions made after it see it
        config = _read_config(api)
        got = timed(m.name, [_Job(m.name, s, c, c, f"mx-{m.name}-{s}")
                             for s, c in claims.items()])
        return Run([m.name], config, nodes, {s: r for (_c, s), r in got.items()})
    finally:
        _set_config(api, {k: before.get(k) for k in m.config})


def save_dir(folder: str | Path) -> Callable[[str, Run], None]:
    """A ``saved`` callback writing ``<folder>/<config>.json.gz``."""
    def save(config: str, run: Run) -> None:
        run.save(Path(folder) / f"{config}.json.gz")
    return save
