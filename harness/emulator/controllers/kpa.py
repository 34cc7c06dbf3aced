"""The KPA in real time: the reference model of :mod:`harness.kpa`, fed by the ingress.

One :class:`RevisionAutoscaler` per PodAutoscaler holds the model's own classes — a
:class:`~harness.kpa.collector.Collection` (stable and panic buckets), a
:class:`~harness.kpa.decider.Decider` and a :class:`~harness.kpa.reconciler.Reconciler`
— and drives them the way :func:`harness.kpa.simulate.simulate_columns` does in virtual
time, one step per wall-clock second of ``time.monotonic`` (the ingress's clock):

1. ready pods are counted from the store (a change makes a reconcile due);
2. the ingress's closed 1 s periods are recorded: the revision-wide average concurrency
   (rps: request count) while the revision has ready pods (queue-proxy scrapes), else
   only the activator's part and only for seconds with traffic; traffic at the activator
   while the decider's last value is 0 pokes the decider;
3. the ingress's ``on_first_request`` (a request for a revision with no ready pod) records
   the activator's immediate stat of 1 and pokes the decider at once;
4. the decider ticks every even second (and on a poke);
5. the reconciler runs when the decider's value or the sign of EBC changed, ready pods
   changed, or at the re-enqueue time it asked for;
6. its outcome is written: Deployment ``spec.replicas``, PA ``status.desiredScale`` /
   ``actualScale`` and conditions (``Active`` True / Unknown ``Queued`` / False
   ``NoTraffic``, ``ScaleTargetInitialized``, ``SKSReady``, ``Ready``), and the
   revision's ``ServerlessService`` (``spec.mode`` Proxy/Serve, ``numActivators``), which
   :mod:`harness.emulator.controllers.sks` turns into endpoints and the ingress's path.
   The Knative controller mirrors the PA into the Revision.

Parameters: ``config-autoscaler`` in ``knative-serving`` and the PA's annotations,
resolved by :func:`harness.resolve.resolve`. The ConfigMap is watched, as Knative's
autoscaler watches it (its config store resyncs every PA): a change reaches every
existing revision at its next decision through :meth:`RevisionAutoscaler.update` —
the ``DeciderSpec`` (rates, targets, TBC, panic threshold, stable window, activation
scale, bounds and scale-to-zero knobs read by the reconciler) and the metric windows
(resized in place, newest buckets kept). What upstream fixes when a decider is created
stays fixed: the ``scale-down-delay`` window and the aggregation algorithm. A
ConfigMap upstream would refuse (a value out of range) is ignored with a warning and
the previous configuration stays, as Knative's config store keeps its last good one.
The PA's ``spec.reachability`` (set by the Knative controller from the Route) is
followed too: an unreachable revision ignores min-scale and scales down unbounded.
``config-observability`` (whether metrics are exported) is read once at start-up, as
upstream reads it (:mod:`harness.emulator.local_cluster`), and is not watched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from harness.emulator.api.status import ApiError
from harness.emulator.api.store import Store
from harness.emulator.api.subscriptions import WatchEvent
from harness.emulator.controllers.base import Controller, condition, owner_ref, set_status
from harness.emulator.controllers.deployments import pod_ready
from harness.errors import UserError
from harness.kpa.collector import Collection
from harness.kpa.decider import Decider, ScaleResult, initial_ebc
from harness.kpa.reconciler import PAState, Reconciler, SKSMode
from harness.objects import AUTOSCALING_PREFIX, CONFIGURATION_LABEL, REVISION_LABEL, SERVICE_LABEL
from harness.params import KPAParams
from harness.resolve import resolve

log = logging.getLogger(__name__)

PA = "autoscaling.internal.knative.dev/podautoscalers"
DEPLOY = "apps/deployments"
CONFIG_NS, CONFIG_NAME = "knative-serving", "config-autoscaler"
_MAX_SAME_INSTANT_PASSES = 4
CONFIG_KEY = ("", "config-autoscaler")
SKS = "networking.internal.knative.dev/serverlessservices"
MIN_ACTIVATORS = 2
_QUEUED_MSG = "Requests to the target are being buffered as resources are provisioned."
_NO_TRAFFIC_MSG = "The target is not receiving traffic."


def read_config_autoscaler(store: Store) -> dict[str, str]:
    cm = store.try_get("configmaps", CONFIG_NAME, namespace=CONFIG_NS)
    return {str(k): str(v) for k, v in ((cm or {}).get("data") or {}).items()}


def pa_params(store: Store, pa: dict[str, Any], data: dict[str, str] | None = None,
              ) -> KPAParams:
    """Effective knobs of a PA: ``config-autoscaler`` + annotations + containerConcurrency."""
    data = read_config_autoscaler(store) if data is None else data
    annotations = {k: v for k, v in (pa["metadata"].get("annotations") or {}).items()
                   if k.startswith(AUTOSCALING_PREFIX)}
    cc = int((pa.get("spec") or {}).get("containerConcurrency") or 0)
    try:
        return resolve(configmap=data, annotations=annotations, container_concurrency=cc).params
    except UserError as exc:
        log.warning("kpa: %s/%s: %s; ignoring its annotations", pa["metadata"]["namespace"],
                    pa["metadata"]["name"], exc)
        return resolve(configmap=data, container_concurrency=cc).params


def num_activators(scaler: RevisionAutoscaler) -> int:
    """``computeNumActivators``: enough activators to cover the ready pods' capacity plus
    a positive burst capacity, at least ``minActivators`` (2); TBC 0 -> 2."""
    p = scaler.params
    if p.target_burst_capacity == 0:
        return MIN_ACTIVATORS
    capacity = scaler.ready * p.total_per_pod + max(0.0, p.target_burst_capacity)
    return max(MIN_ACTIVATORS, math.ceil(capacity / p.activator_capacity))


class RevisionAutoscaler:
    """The model's collection, decider and reconciler for one revision, in real time."""

    def __init__(self, namespace: str, name: str, params: KPAParams, *, now: float,
                 replicas: int, labels: dict[str, str]) -> None:
        self.namespace, self.name, self.params = namespace, name, params
        self.labels = labels
        self.metrics = Collection(params)
        self.decider = Decider(params, self.metrics, now=now, ready=0)
        self.last_desired = -1
        self.ebc = initial_ebc(params)
        self.rec = Reconciler(params, replicas=replicas, state=PAState.ACTIVATING,
                              state_since=now, sks_mode=SKSMode.PROXY, proxy_since=now,
                              initialized=False)
        self.ready = 0
        self.has_served = False
        """True once the revision had a ready pod (for the ``never-zero`` mutation)."""
        self.requeue_at = math.inf
        self.reconcile_due = True
        self.last: ScaleResult | None = None
        self.ticks = 0
        self.pokes = 0
        self.history: deque[tuple[float, int, int, int]] = deque(maxlen=10_000)
        """(monotonic time, ready, replicas, want) after each reconcile, for tests."""
        self.tick_log: deque[tuple[float, int, int, float, float, bool]] = deque(maxlen=10_000)
        """(monotonic time, ready, decider value, stable, panic, panic mode) per tick."""
        self.observed: deque[tuple[float, float]] = deque(maxlen=10_000)
        """(bucket time, value) of every metric recorded."""
        self.generation = 0
        """The PA generation whose spec (reachability) was last applied."""
        self.updates: deque[tuple[float, KPAParams]] = deque(maxlen=100)
        """(monotonic time, params) of every live configuration change applied."""

    @property
    def reachable(self) -> bool:
        return self.rec.reachable

    def set_reachable(self, reachable: bool) -> None:
        """The PA's ``spec.reachability`` (``DeciderSpec.Reachable`` and the bounds)."""
        if reachable != self.rec.reachable:
            self.rec.reachable = self.decider.reachable = reachable
            self.reconcile_due = True

    def update(self, params: KPAParams, now: float) -> None:
        """A new configuration, from the next decision on (see the module docstring)."""
        if params == self.params:
            return
        self.params = params
        self.decider.update(params)
        self.metrics.update(params, now)
        self.rec.params = params
        self.reconcile_due = True
        self.updates.append((now, params))

    def observe(self, stat: Any) -> bool:
        """Record one closed ingress period; True when it should poke the decider."""
        rps = self.params.metric == "rps"
        last = self.metrics.stable.last_write
        when = float(stat.time) if last is None else max(float(stat.time), float(last))
        if self.metrics.scraped and self.ready > 0:
            value = float(stat.request_count if rps else stat.average_concurrency)
            self.metrics.record(when, value)
            self.observed.append((when, value))
            return False
        value = float(stat.proxied_request_count if rps else stat.proxied_concurrency)
        if value <= 0 and self.ready == 0:
            value = float(stat.request_count if rps else stat.average_concurrency)
        if value > 0:
            self.metrics.record(when, value)
            self.observed.append((when, value))
            return self.last_desired == 0
        return False

    def tick(self, now: float) -> None:
        res = self.decider.scale(now, self.ready)
        self.ticks += 1
        self.last = res
        self.tick_log.append((now, self.ready, res.desired, res.stable, res.panic,
                              res.panic_mode))
        if res.valid:
            if res.desired != self.last_desired or (res.ebc < 0) != (self.ebc < 0):
                self.reconcile_due = True
            self.last_desired = res.desired
            self.ebc = res.ebc

    def reconcile(self, now: float) -> bool:
        """Run the reconciler if due; True when it ran."""
        if not (self.reconcile_due or now >= self.requeue_at):
            return False
        self.reconcile_due = False
        if now >= self.requeue_at:
            self.requeue_at = math.inf
        for _ in range(_MAX_SAME_INSTANT_PASSES):
            before = (self.rec.state, self.rec.sks_mode)
            result = self.rec.reconcile(now, self.last_desired, self.ebc, self.ready)
            if result.requeue_after is not None:
                self.requeue_at = min(self.requeue_at, now + result.requeue_after)
            if (self.rec.state, self.rec.sks_mode) == before:
                break
        self.history.append((now, self.ready, self.rec.replicas, self.rec.want))
        return True


class KPAController(Controller):
    """Runs a :class:`RevisionAutoscaler` per PodAutoscaler, once a second."""

    name = "kpa"
    resources = (PA, "configmaps")

    def __init__(self, store: Store, *, ingress: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(store)
        self.ingress = ingress
        self.clock = clock
        self.scalers: dict[tuple[str, str], RevisionAutoscaler] = {}
        self._ticker: asyncio.Task[None] | None = None
        self.mutations: Any = None
        """A :class:`~harness.emulator.mutations.Mutations` (knobs and replicas), or None."""
        self.truth: Any = None
        """A :class:`~harness.emulator.truth.TruthLog` for desired-scale writes, or None."""
        self.config: dict[str, str] | None = None
        """The ``config-autoscaler`` data in force (None until first read)."""
        self.config_errors = 0

    def keys_for(self, resource: str, event: WatchEvent) -> Iterable[Hashable]:
        meta = event.object["metadata"]
        if resource == "configmaps":
            if (meta.get("namespace"), meta.get("name")) == (CONFIG_NS, CONFIG_NAME):
                return [CONFIG_KEY]
            return []
        return [(meta["namespace"], meta["name"])]

    async def start(self) -> None:
        await super().start()
        self._ticker = asyncio.create_task(self._run_ticker(), name="kpa-ticker")

    async def on_stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._ticker
            self._ticker = None

    def current_config(self) -> dict[str, str]:
        """``config-autoscaler`` as last accepted (read once on first use)."""
        if self.config is None:
            self.config = read_config_autoscaler(self.store)
        return self.config

    def _reconfigure(self) -> None:
        """``config-autoscaler`` changed: every existing revision takes the new knobs."""
        data = read_config_autoscaler(self.store)
        if data == self.config:
            return
        try:
            resolve(configmap=data)
        except UserError as exc:
            self.config_errors += 1
            log.warning("kpa: config-autoscaler refused, previous configuration kept: %s",
                        exc)
            return
        self.config = data
        now = self.clock()
        for (ns, name), scaler in list(self.scalers.items()):
            pa = self.store.try_get(PA, name, namespace=ns)
            if pa is None:
                continue
            params = pa_params(self.store, pa, data)
            if self.mutations:
                params = self.mutations.kpa_params(params)
            scaler.update(params, now)

    async def reconcile(self, key: Hashable) -> None:
        if key == CONFIG_KEY:
            self._reconfigure()
            return
        ns, name = key  # type: ignore[misc]
        pa = self.store.try_get(PA, name, namespace=ns)
        if pa is None or pa["metadata"].get("deletionTimestamp"):
            if self.scalers.pop((ns, name), None) is not None and self.ingress is not None:
                with contextlib.suppress(Exception):
                    self.ingress.remove_revision(ns, name)
            return
        reachable = (pa.get("spec") or {}).get("reachability") != "Unreachable"
        generation = int(pa["metadata"].get("generation", 1))
        scaler = self.scalers.get((ns, name))
        if scaler is not None:
            if generation != scaler.generation:
                scaler.generation = generation
                scaler.set_reachable(reachable)
            return
        params = pa_params(self.store, pa, self.current_config())
        if self.mutations:
            params = self.mutations.kpa_params(params)
        dep_name = ((pa.get("spec") or {}).get("scaleTargetRef") or {}).get(
            "name", f"{name}-deployment")
        dep = self.store.try_get(DEPLOY, dep_name, namespace=ns)
        replicas = int(((dep or {}).get("spec") or {}).get("replicas", params.initial_scale))
        scaler = RevisionAutoscaler(ns, name, params, now=self.clock(), replicas=replicas,
                                    labels=dict(pa["metadata"].get("labels") or {}))
        scaler.generation = generation
        scaler.set_reachable(reachable)
        self.scalers[(ns, name)] = scaler
        self._step(scaler, self.clock(), tick=False)

    # ------------------------------------------------------------------ real time

    async def _run_ticker(self) -> None:
        while True:
            now = self.clock()
            await asyncio.sleep(math.floor(now) + 1.02 - now)
            now = self.clock()
            tick = int(math.floor(now)) % 2 == 0
            for scaler in list(self.scalers.values()):
                try:
                    self._step(scaler, now, tick=tick)
                except Exception:  # noqa: BLE001 - one revision must not stop the rest
                    log.exception("kpa: step of %s/%s", scaler.namespace, scaler.name)

    def on_first_request(self, namespace: str, revision: str) -> None:
        """The activator's poke: immediate stat of 1 and an immediate decider tick."""
        scaler = self.scalers.get((namespace, revision))
        if scaler is None:
            return
        now = self.clock()
        last = scaler.metrics.stable.last_write
        scaler.metrics.record(now if last is None else max(now, float(last)), 1.0)
        scaler.pokes += 1
        if scaler.last_desired == 0:
            self._step(scaler, now, tick=True, take_stats=False)

    def _count_ready(self, scaler: RevisionAutoscaler) -> int:
        pods = self.store.list("pods", namespace=scaler.namespace,
                               label_selector=f"{REVISION_LABEL}={scaler.name}",
                               copy_items=False)["items"]
        return sum(1 for p in pods if pod_ready(p))

    def _step(self, scaler: RevisionAutoscaler, now: float, *, tick: bool,
              take_stats: bool = True) -> None:
        ready = self._count_ready(scaler)
        if ready != scaler.ready:
            scaler.ready = ready
            scaler.reconcile_due = True
        scaler.has_served = scaler.has_served or ready > 0
        if take_stats and self.ingress is not None:
            for stat in self.ingress.take_stats(scaler.namespace, scaler.name):
                if scaler.observe(stat):
                    tick = True
        if tick:
            scaler.tick(now)
        if scaler.reconcile(now):
            self._apply(scaler)

    def _apply(self, scaler: RevisionAutoscaler) -> None:
        ns, name = scaler.namespace, scaler.name
        pa = self.store.try_get(PA, name, namespace=ns)
        if pa is None:
            return
        dep_name = ((pa.get("spec") or {}).get("scaleTargetRef") or {}).get(
            "name", f"{name}-deployment")
        dep = self.store.try_get(DEPLOY, dep_name, namespace=ns)
        rec = scaler.rec
        replicas = rec.replicas
        if self.mutations:
            replicas = self.mutations.kpa_replicas(replicas, has_served=scaler.has_served)
        if dep is not None and int((dep.get("spec") or {}).get("replicas", 0)) != replicas:
            self.store.patch(DEPLOY, dep_name, {"spec": {"replicas": replicas}},
                             namespace=ns)
        self._sks(pa, dep_name, rec.sks_mode, scaler)
        prev = (pa.get("status") or {}).get("conditions") or []
        if rec.state is PAState.ACTIVE:
            active = condition("Active", "True", "", "", prev)
        elif rec.state is PAState.ACTIVATING:
            active = condition("Active", "Unknown", "Queued", _QUEUED_MSG, prev)
        else:
            reason = rec.reason or "NoTraffic"
            active = condition("Active", "False", reason, _NO_TRAFFIC_MSG
                               if reason == "NoTraffic" else "The target could not be "
                               "activated.", prev)
        init = "True" if rec.initialized else "Unknown"
        ready = "True" if rec.state is PAState.ACTIVE and rec.initialized else (
            "False" if rec.state is PAState.INACTIVE else "Unknown")
        status = {
            "observedGeneration": pa["metadata"].get("generation", 1),
            "desiredScale": rec.desired_scale, "actualScale": scaler.ready,
            "serviceName": name, "metricsServiceName": f"{name}-private",
            "conditions": [active,
                           condition("Ready", ready, active.get("reason", ""),
                                     active.get("message", ""), prev),
                           condition("SKSReady", "True", "", "", prev),
                           condition("ScaleTargetInitialized", init, "", "", prev)],
        }
        before = (pa.get("status") or {}).get("desiredScale")
        set_status(self.store, PA, pa, status)
        if self.truth is not None and before != rec.desired_scale:
            self.truth.add("desired-scale", ns, name, desired=rec.desired_scale)

    def _sks(self, pa: dict[str, Any], dep_name: str, mode: SKSMode,
             scaler: RevisionAutoscaler) -> None:
        """``ReconcileSKS``: the revision's ServerlessService with the mode decided."""
        meta = pa["metadata"]
        ns, name = meta["namespace"], meta["name"]
        spec = {"mode": mode.value, "numActivators": num_activators(scaler),
                "objectRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                              "name": dep_name},
                "protocolType": (pa.get("spec") or {}).get("protocolType", "http1")}
        try:
            sks = self.store.try_get(SKS, name, namespace=ns)
            if sks is None:
                self.store.create(SKS, {
                    "metadata": {"name": name, "labels": dict(meta.get("labels") or {}),
                                 "annotations": dict(meta.get("annotations") or {}),
                                 "ownerReferences": [owner_ref(pa)]},
                    "spec": spec}, namespace=ns)
            elif sks.get("spec") != spec:
                self.store.patch(SKS, name, {"spec": spec}, namespace=ns)
        except ApiError:
            pass  # namespace closing

    # ------------------------------------------------------------------ gauges

    def gauges(self) -> list[tuple[str, dict[str, str], float]]:
        """Decider gauges in Knative 1.21's names (OpenTelemetry instruments
        ``kn.revision.*`` as the Prometheus exporter writes them: dots to underscores,
        attributes ``k8s.namespace.name``, ``kn.revision.name``, ... likewise)."""
        out: list[tuple[str, dict[str, str], float]] = []
        for s in list(self.scalers.values()):
            labels = {"k8s_namespace_name": s.namespace,
                      "kn_service_name": s.labels.get(SERVICE_LABEL, ""),
                      "kn_configuration_name": s.labels.get(
                          CONFIGURATION_LABEL, ""),
                      "kn_revision_name": s.name}
            res = s.last
            kind = "rps" if s.params.metric == "rps" else "concurrency"
            out += [
                ("kn_revision_pods_desired", labels, float(s.last_desired)),
                ("kn_revision_capacity_excess", labels, float(s.ebc)),
                ("kn_revision_panic_mode", labels, 1.0 if s.decider.panicking else 0.0),
                (f"kn_revision_{kind}_stable", labels, res.stable if res else 0.0),
                (f"kn_revision_{kind}_panic", labels, res.panic if res else 0.0),
                (f"kn_revision_{kind}_target", labels, float(s.params.target_per_pod)),
            ]
        return out
