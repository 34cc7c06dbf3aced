"""The real-time KPA controller on a fake clock and a fake ingress: PA conditions
(Queued -> Active -> NoTraffic), Deployment replicas, scale to zero after the fast
profile's gates, the activator's poke from zero, and the Prometheus gauges."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from harness.emulator.api.store import Store
from harness.emulator.controllers.kpa import CONFIG_KEY, KPAController
from harness.emulator.dataplane.metrics import render

PA = "autoscaling.internal.knative.dev/podautoscalers"
REV = "demo-predictor-00001"
LABEL = "serving.knative.dev/revision"
FAST = {"stable-window": "6s", "panic-window-percentage": "50",
        "panic-threshold-percentage": "200", "container-concurrency-target-percentage": "85",
        "max-scale-up-rate": "10", "max-scale-down-rate": "2", "scale-down-delay": "4s",
        "scale-to-zero-pod-retention-period": "5s", "scale-to-zero-grace-period": "3s"}


@dataclass(frozen=True)
class FakeStat:
    time: float
    average_concurrency: float
    request_count: int
    proxied_concurrency: float
    proxied_request_count: int


class FakeIngress:
    def __init__(self) -> None:
        self.load = 0.0
        self.pending: list[FakeStat] = []
        self.proxy: dict[tuple[str, str], bool] = {}

    def close_second(self, t: float, ready: int) -> None:
        proxied = self.load if ready == 0 else 0.0
        self.pending.append(FakeStat(t, self.load, int(self.load * 10), proxied,
                                     int(proxied * 10)))

    def take_stats(self, ns: str, rev: str) -> list[FakeStat]:
        out, self.pending = self.pending, []
        return out

    def set_proxy_mode(self, ns: str, rev: str, proxy: bool) -> None:
        self.proxy[(ns, rev)] = proxy

    def remove_revision(self, ns: str, rev: str) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _setup(**config: str) -> tuple[Store, KPAController, FakeIngress, Clock]:
    store = Store()
    store.create("namespaces", {"metadata": {"name": "knative-serving"}})
    store.create("configmaps", {"metadata": {"name": "config-autoscaler"},
                                "data": {**FAST, **config}}, namespace="knative-serving")
    labels = {LABEL: REV, "serving.knative.dev/service": "demo-predictor",
              "serving.knative.dev/configuration": "demo-predictor"}
    store.create("apps/deployments", {
        "metadata": {"name": f"{REV}-deployment", "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": {LABEL: REV}},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                     {"name": "c"}]}}}}, namespace="default")
    store.create(PA, {"metadata": {"name": REV, "labels": labels, "annotations": {
        "autoscaling.knative.dev/min-scale": "0", "autoscaling.knative.dev/max-scale": "5"}},
        "spec": {"containerConcurrency": 1, "scaleTargetRef": {
            "apiVersion": "apps/v1", "kind": "Deployment", "name": f"{REV}-deployment"}}},
        namespace="default")
    ingress, clock = FakeIngress(), Clock()
    ctrl = KPAController(store, ingress=ingress, clock=clock)
    asyncio.run(ctrl.reconcile(("default", REV)))
    return store, ctrl, ingress, clock


def _pods_follow(store: Store, ready: int) -> None:
    """Ready pods follow the Deployment's replicas at once (zero start-up time)."""
    pods = store.list("pods", namespace="default")["items"]
    for p in pods[ready:]:
        store.delete("pods", p["metadata"]["name"], namespace="default")
    for i in range(len(pods), ready):
        store.create("pods", {"metadata": {"name": f"pod-{i}-{len(pods)}", "labels": {
            LABEL: REV}}, "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True"}]}}, namespace="default")


def _active(store: Store) -> dict[str, Any]:
    pa = store.get(PA, REV, namespace="default")
    return next(c for c in pa["status"]["conditions"] if c["type"] == "Active")


def _run(store: Store, ctrl: KPAController, ingress: FakeIngress, clock: Clock,
         seconds: int, follow: bool = True) -> list[int]:
    replicas = []
    scaler = ctrl.scalers[("default", REV)]
    for _ in range(seconds):
        clock.t += 1.0
        ingress.close_second(clock.t, scaler.ready)
        ctrl._step(scaler, clock.t, tick=int(clock.t) % 2 == 0)  # noqa: SLF001
        dep = store.get("apps/deployments", f"{REV}-deployment", namespace="default")
        replicas.append(int(dep["spec"]["replicas"]))
        if follow:
            _pods_follow(store, replicas[-1])
    return replicas


def test_queued_then_active_then_scale_up_then_to_zero() -> None:
    store, ctrl, ingress, clock = _setup()
    _run(store, ctrl, ingress, clock, 1, follow=False)
    active = _active(store)
    assert (active["status"], active["reason"]) == ("Unknown", "Queued")
    _pods_follow(store, 1)
    _run(store, ctrl, ingress, clock, 2)
    assert _active(store)["status"] == "True"
    ingress.load = 3.0
    up = _run(store, ctrl, ingress, clock, 8)
    assert max(up) == 4  # ceil(3 / (1 x 0.85)) with cc = 1
    pa = store.get(PA, REV, namespace="default")
    assert pa["status"]["desiredScale"] == 4 and pa["status"]["actualScale"] == 4
    ingress.load = 0.0
    down = _run(store, ctrl, ingress, clock, 40)
    assert down[-1] == 0
    first_zero = down.index(0)
    # stable window 6 s of zeros + delay 4 s + Active for a window + retention 5 s
    assert first_zero >= 6 + 4 + 5, down
    active = _active(store)
    assert (active["status"], active["reason"]) == ("False", "NoTraffic")
    assert store.get(PA, REV, namespace="default")["status"]["desiredScale"] == 0
    sks = store.get("networking.internal.knative.dev/serverlessservices", REV, namespace="default")
    assert sks["spec"]["mode"] == "Proxy"  # SKS in Proxy at zero

    # From zero: the activator's first request pokes the decider at once.
    ctrl.on_first_request("default", REV)
    dep = store.get("apps/deployments", f"{REV}-deployment", namespace="default")
    assert dep["spec"]["replicas"] == 2  # ceil(1 / 0.85): two pods, as Knative does
    assert _active(store)["reason"] == "Queued"

    text = render(ctrl.gauges())
    # Knative 1.21's OpenTelemetry names as the Prometheus exporter writes them
    assert "# TYPE kn_revision_pods_desired gauge" in text
    assert f'kn_revision_pods_desired{{k8s_namespace_name="default",kn_configuration_name=' \
           f'"demo-predictor",kn_revision_name="{REV}",kn_service_name="demo-predictor"}} 2' \
        in text
    assert "kn_revision_panic_mode{" in text
    assert "kn_revision_concurrency_stable{" in text
    assert "autoscaler_" not in text


def test_a_config_autoscaler_that_differs_changes_the_outcome() -> None:
    """The check above can fail: with a 60 s stable window nothing reaches zero in 40 s."""
    store, ctrl, ingress, clock = _setup(**{"stable-window": "60s"})
    assert ctrl.scalers[("default", REV)].params.stable_window == 60.0
    _pods_follow(store, 1)
    ingress.load = 3.0
    _run(store, ctrl, ingress, clock, 8)
    ingress.load = 0.0
    down = _run(store, ctrl, ingress, clock, 40)
    assert 0 not in down
    store.delete(PA, REV, namespace="default")
    asyncio.run(ctrl.reconcile(("default", REV)))
    assert ("default", REV) not in ctrl.scalers


# ---------------------------------------------------------------- live config-autoscaler


def _set_config(store: Store, ctrl: KPAController, **changes: str) -> None:
    """Patch ``config-autoscaler`` and let the controller see it, as its watch would."""
    store.patch("configmaps", "config-autoscaler", {"data": changes},
                namespace="knative-serving")
    asyncio.run(ctrl.reconcile(CONFIG_KEY))


def _panicked(ctrl: KPAController, since: float) -> bool:
    return any(panic for t, *_rest, panic in ctrl.scalers[("default", REV)].tick_log
               if t > since)


def test_a_panic_threshold_change_reaches_the_running_decider() -> None:
    """Load 6x one pod's capacity: not panic at 1000 %, panic from the next tick at 200 %."""
    store, ctrl, ingress, clock = _setup(**{"panic-threshold-percentage": "1000"})
    _pods_follow(store, 1)
    ingress.load = 5.0
    _run(store, ctrl, ingress, clock, 10, follow=False)
    assert not _panicked(ctrl, 0.0)
    changed_at = clock.t
    _set_config(store, ctrl, **{"panic-threshold-percentage": "200"})
    scaler = ctrl.scalers[("default", REV)]
    assert scaler.params.panic_threshold == 2.0
    assert scaler.updates and scaler.updates[-1][0] == changed_at
    _run(store, ctrl, ingress, clock, 2, follow=False)
    assert _panicked(ctrl, changed_at)
    # and back: a threshold far above the load ends panic a stable window later
    _set_config(store, ctrl, **{"panic-threshold-percentage": "1000"})
    _run(store, ctrl, ingress, clock, 10, follow=False)
    assert not scaler.decider.panicking


def _descent(**changes: str) -> list[int]:
    """Replicas after a burst to max-scale (5) and then no load; ``changes`` applied live
    while at 5 pods."""
    store, ctrl, ingress, clock = _setup(**{"panic-threshold-percentage": "1000",
                                            "scale-down-delay": "0s"})
    _pods_follow(store, 1)
    ingress.load = 20.0
    up = _run(store, ctrl, ingress, clock, 12)
    assert up[-1] == 5
    if changes:
        _set_config(store, ctrl, **changes)
    ingress.load = 0.0
    return _run(store, ctrl, ingress, clock, 8)


def test_a_max_scale_down_rate_change_reaches_the_running_decider() -> None:
    """At 5 pods and no load the first step down is floor(5 / rate): 2 at rate 2, 4 once the
    running cluster's rate is set to 1.25."""
    before = _descent()
    after = _descent(**{"max-scale-down-rate": "1.25"})
    assert next(r for r in before if r < 5) == 2
    assert next(r for r in after if r < 5) == 4


def test_scale_down_delay_stays_as_the_decider_was_created() -> None:
    """Upstream builds the delay window once (``New``); a changed delay reaches only
    revisions created afterwards. Bad values are refused and the last good config kept."""
    store, ctrl, ingress, clock = _setup()
    scaler = ctrl.scalers[("default", REV)]
    window = scaler.decider.delay_window
    assert window is not None
    _set_config(store, ctrl, **{"scale-down-delay": "30s", "stable-window": "12s"})
    assert scaler.params.scale_down_delay == 30.0
    assert scaler.decider.delay_window is window
    assert scaler.metrics.stable.window == 12.0 and scaler.metrics.panic.window == 6.0
    _set_config(store, ctrl, **{"max-scale-down-rate": "0.5"})
    assert ctrl.config_errors == 1
    assert scaler.params.max_scale_down_rate == 2.0
