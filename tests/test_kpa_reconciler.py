"""The KPA reconciler's bounds, scale-to-zero gates, PA state and SKS mode (§7-9)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from harness.kpa.reconciler import PAState, Reconciler, SKSMode
from harness.params import KPAParams

P = KPAParams(
    stable_window=60,
    scale_to_zero_grace_period=30,
    scale_to_zero_pod_retention_period=0,
    target_burst_capacity=0,
)
LONG_AGO = -math.inf


def rec(
    params: KPAParams = P,
    *,
    replicas: int = 1,
    state: PAState = PAState.ACTIVE,
    since: float = LONG_AGO,
    mode: SKSMode = SKSMode.SERVE,
    proxy_since: float | None = None,
    initialized: bool = True,
    **kw,
) -> Reconciler:
    return Reconciler(
        params,
        replicas=replicas,
        state=state,
        state_since=since,
        sks_mode=mode,
        proxy_since=proxy_since,
        initialized=initialized,
        **kw,
    )


@pytest.mark.parametrize(
    ("name", "changes", "decider", "want"),
    [
        ("min-scale raises the decision", {"min_scale": 2}, 1, 2),
        ("max-scale caps the decision", {"max_scale": 5}, 9, 5),
        ("max-scale 0 means unlimited", {"max_scale": 0}, 900, 900),
        ("min-scale keeps pods at zero demand", {"min_scale": 2}, 0, 2),
        ("scale-to-zero disabled turns 0 into 1", {"enable_scale_to_zero": False}, 0, 1),
    ],
)
def test_bounds(name, changes, decider, want):
    r = rec(replace(P, **changes))
    out = r.reconcile(0.0, decider, 0, ready=1)
    assert (out.want, out.replicas) == (want, want)


def test_initial_scale_is_a_floor_until_the_target_is_initialized():
    r = rec(replace(P, initial_scale=3), state=PAState.ACTIVATING, since=0.0, initialized=False)
    assert r.reconcile(0.0, 1, 0, ready=0).replicas == 3
    assert r.state is PAState.ACTIVATING
    assert r.reconcile(5.0, 1, 0, ready=3).replicas == 3  # 3 ready: initialized, Active
    assert r.initialized and r.state is PAState.ACTIVE
    assert r.reconcile(7.0, 1, 0, ready=3).replicas == 1


def test_min_scale_is_ignored_for_unreachable_revisions():
    r = rec(replace(P, min_scale=3), reachable=False)
    assert r.reconcile(0.0, 1, 0, ready=1).replicas == 1


def test_unknown_decision_changes_nothing_unless_activating():
    r = rec(replicas=4)
    out = r.reconcile(0.0, -1, 0, ready=4)
    assert (out.want, out.replicas, r.state) == (-1, 4, PAState.ACTIVE)


def test_activating_with_unknown_decision_scales_to_an_initial_scale_above_one():
    r = rec(replace(P, initial_scale=3), state=PAState.ACTIVATING, since=0.0, initialized=False,
            replicas=0)
    assert r.reconcile(1.0, -1, 0, ready=0).replicas == 3


def test_initial_scale_one_does_not_raise_min():
    """scaler.go raises min only for initial-scale > 1 (tests/fixtures/oracle/initial-scale-one)."""
    r = rec(state=PAState.ACTIVATING, since=0.0, initialized=False, replicas=0)
    out = r.reconcile(1.0, -1, 0, ready=0)
    assert (out.want, out.replicas) == (-1, 0)


def test_active_for_less_than_a_stable_window_holds_one_pod():
    r = rec(replicas=3, state=PAState.ACTIVE, since=0.0)
    out = r.reconcile(20.0, 0, 0, ready=3)
    assert (out.want, out.replicas, out.requeue_after) == (1, 1, 40.0)  # 60 - 20
    assert r.state is PAState.ACTIVE


def test_active_for_a_stable_window_goes_inactive_and_keeps_the_last_pod():
    r = rec(replicas=1, state=PAState.ACTIVE, since=0.0)
    out = r.reconcile(60.0, 0, 0, ready=1)
    assert (out.want, out.replicas) == (0, 1)
    assert (r.state, r.reason, r.state_since) == (PAState.INACTIVE, "NoTraffic", 60.0)
    assert (r.sks_mode, r.proxy_since) == (SKSMode.PROXY, 60.0)


def test_retention_keeps_the_last_pod_for_max_grace_retention_after_inactive():
    r = rec(replace(P, scale_to_zero_pod_retention_period=1800), state=PAState.INACTIVE,
            since=100.0, mode=SKSMode.PROXY, proxy_since=LONG_AGO)
    out = r.reconcile(200.0, 0, 0, ready=1)
    assert (out.want, out.replicas, out.requeue_after) == (0, 1, 1700.0)
    assert r.reconcile(1899.0, 0, 0, ready=1).replicas == 1
    assert r.reconcile(1900.0, 0, 0, ready=1).replicas == 0


def test_proxy_fast_path_scales_to_zero_at_once_when_proxy_for_a_grace_period():
    r = rec(state=PAState.INACTIVE, since=100.0, mode=SKSMode.PROXY, proxy_since=LONG_AGO)
    assert r.reconcile(100.0, 0, -5, ready=1).replicas == 0


def test_fast_path_waits_the_rest_of_the_grace_period_after_entering_proxy():
    r = rec(state=PAState.INACTIVE, since=100.0, mode=SKSMode.PROXY, proxy_since=90.0)
    out = r.reconcile(100.0, 0, 0, ready=1)
    assert (out.replicas, out.requeue_after) == (1, 20.0)  # grace 30 - proxy for 10
    assert r.reconcile(120.0, 0, 0, ready=1).replicas == 0


def test_fast_path_applies_once_a_short_retention_has_passed():
    params = replace(P, scale_to_zero_pod_retention_period=10)
    r = rec(params, state=PAState.INACTIVE, since=100.0, mode=SKSMode.PROXY,
            proxy_since=LONG_AGO)
    assert r.reconcile(105.0, 0, 0, ready=1).requeue_after == 5.0
    # InactiveFor 10 < max(30, 10), but retention passed and Proxy for >= grace
    assert r.reconcile(110.0, 0, 0, ready=1).replicas == 0


def test_retention_is_zero_for_unreachable_revisions():
    params = replace(P, scale_to_zero_pod_retention_period=1800)
    r = rec(params, state=PAState.INACTIVE, since=100.0, mode=SKSMode.PROXY,
            proxy_since=LONG_AGO, reachable=False)
    assert r.reconcile(100.0, 0, 0, ready=1).replicas == 0


def test_activating_at_zero_demand_waits_until_the_activation_timeout():
    r = rec(state=PAState.ACTIVATING, since=0.0, replicas=1, activation_timeout=630.0)
    out = r.reconcile(100.0, 0, 0, ready=0)
    # scaler.go re-enqueues after the whole timeout (tests/fixtures/oracle/activation-requeue)
    assert (out.want, out.replicas, out.requeue_after) == (-1, 1, 630.0)
    assert r.state is PAState.ACTIVATING
    out = r.reconcile(631.0, 0, 0, ready=0)
    assert (out.want, out.replicas) == (0, 0)
    assert (r.state, r.reason) == (PAState.INACTIVE, "TimedOut")


@pytest.mark.parametrize(
    ("decider", "ebc", "mode"),
    [(3, 0, SKSMode.SERVE), (3, 5, SKSMode.SERVE), (3, -1, SKSMode.PROXY)],
)
def test_sks_serves_only_when_want_is_positive_and_ebc_not_negative(decider, ebc, mode):
    r = rec(replicas=3)
    r.reconcile(0.0, decider, ebc, ready=3)
    assert r.sks_mode is mode


def test_unknown_want_keeps_an_inactive_revision_in_proxy():
    r = rec(replicas=0, state=PAState.INACTIVE, mode=SKSMode.SERVE)
    r.reconcile(0.0, -1, 0, ready=0)
    assert (r.sks_mode, r.state) == (SKSMode.PROXY, PAState.INACTIVE)


def test_scale_from_zero_activates_then_becomes_active_when_pods_are_ready():
    r = rec(replicas=0, state=PAState.INACTIVE, mode=SKSMode.PROXY, proxy_since=LONG_AGO)
    out = r.reconcile(10.0, 2, -212, ready=0)
    assert (out.want, out.replicas, r.state) == (2, 2, PAState.ACTIVATING)
    r.reconcile(40.0, 2, -210, ready=2)
    assert (r.state, r.state_since) == (PAState.ACTIVE, 40.0)


def test_traffic_during_retention_makes_the_pa_active_again():
    params = replace(P, scale_to_zero_pod_retention_period=1800)
    r = rec(params, state=PAState.INACTIVE, since=100.0, mode=SKSMode.PROXY,
            proxy_since=LONG_AGO)
    out = r.reconcile(500.0, 1, -210, ready=1)
    assert (out.want, out.replicas, r.state) == (1, 1, PAState.ACTIVE)
