"""Knative's own decider cases, ported as numbers (upstream ``autoscaler_test.go``).

Upstream (``pkg/autoscaler/scaling/autoscaler_test.go``) builds deciders with
``TargetValue = T``, ``TotalValue = T / 0.75``,
``PanicThreshold = 2``, both rates 10 and a 60 s stable window, then feeds fixed stable
and panic averages through a fake metric client. Here the same numbers go through
:class:`harness.kpa.Decider` with a stub :class:`~harness.kpa.decider.MetricSource`.
Upstream compares EBC with a tolerance of one (float rounding across platforms); so do we.
Case names are upstream's, so a failure points at the case to read there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from harness.kpa import Decider
from harness.params import KPAParams

UTILIZATION = 0.75


@dataclass
class Metrics:
    stable: float = 0.0
    panic: float = 0.0

    def stable_and_panic(self, now: float) -> tuple[float, float] | None:
        return self.stable, self.panic

    def set(self, stable: float, panic: float) -> None:
        self.stable, self.panic = stable, panic


def params(target: float, tbc: float, *, metric: str = "concurrency", **kw) -> KPAParams:
    base = dict(
        stable_window=60.0,
        panic_threshold_percentage=200.0,
        max_scale_up_rate=10.0,
        max_scale_down_rate=10.0,
        target_burst_capacity=tbc,
        metric=metric,
        target_utilization_percentage=UTILIZATION,
        activator_capacity=150.0,
    )
    if metric == "rps":
        base["requests_per_second_target_default"] = target / UTILIZATION
    else:
        base["container_concurrency_target_default"] = target / UTILIZATION
    base.update(kw)
    p = KPAParams(**base)
    assert p.target_per_pod == pytest.approx(target)
    return p


def decider(p: KPAParams, metrics: Metrics, ready: int = 1, now: float = 0.0) -> Decider:
    return Decider(p, metrics, now=now, ready=ready)


def expected_ebc(target: float, tbc: float, panic: float, pods: float) -> int:
    return math.floor(target / UTILIZATION * pods - tbc - panic)


def expect(d: Decider, now: float, ready: int, want: int, want_ebc: int | None = None) -> None:
    got = d.scale(now, ready)
    assert got.valid
    assert got.desired == want
    if want_ebc is not None:
        assert abs(got.ebc - want_ebc) <= 1, (got.ebc, want_ebc)


def test_scale_down_delay_simple_then_gradual():
    m = Metrics()
    p = params(10, 100, panic_threshold_percentage=10000.0, scale_down_delay=300.0)
    d = decider(p, m, ready=0)
    m.set(40, 40)
    expect(d, 2, 0, 4)
    m.set(0, 0)
    expect(d, 300, 0, 4)  # five minutes at reduced load: less than the delay
    expect(d, 302, 0, 0)  # five minutes and two seconds: scale down
    # gradual
    m.set(40, 40)
    expect(d, 540, 0, 4)
    m.set(30, 30)
    expect(d, 600, 0, 4)  # 4 still dominates
    m.set(0, 0)
    expect(d, 660, 0, 4)  # still at 4
    expect(d, 840, 0, 3)  # 4 scrolls out, drop to 3
    expect(d, 900, 0, 0)  # everything scrolled out, drop to 0


def test_scale_down_delay_not_applied_when_unreachable():
    m = Metrics(40, 40)
    p = params(10, 100, panic_threshold_percentage=10000.0, scale_down_delay=300.0)
    d = decider(p, m, ready=0)
    expect(d, 2, 0, 4)
    m.set(0, 0)
    expect(d, 60, 0, 4)
    d.reachable = False  # another revision took the route
    expect(d, 62, 0, 0)


def test_scale_down_delay_zero_scales_down_at_once():
    m = Metrics(40, 40)
    d = decider(params(10, 100, panic_threshold_percentage=10000.0), m, ready=0)
    expect(d, 0, 0, 4)
    m.set(20, 20)
    expect(d, 0.5, 0, 2)


def test_stable_mode_increase_with_concurrency_default():
    m = Metrics(50, 10)
    d = decider(params(10, 101), m)
    expect(d, 0, 1, 5, expected_ebc(10, 101, 10, 1))
    m.stable = 100
    expect(d, 0, 1, 10, expected_ebc(10, 101, 10, 1))


def test_stable_mode_increase_with_rps():
    m = Metrics(50, 50)
    d = decider(params(10, 101, metric="rps"), m)
    expect(d, 0, 1, 5, expected_ebc(10, 101, 50, 1))
    m.set(100, 99)
    expect(d, 0, 1, 10, expected_ebc(10, 101, 99, 1))


def test_unpanic_after_slow_increase():
    m = Metrics(11, 25)
    d = decider(params(1, 98), m)
    expect(d, 0, 10, 25, expected_ebc(1, 98, 25, 10))
    assert d.panic_time == 0
    m.set(30, 41)
    expect(d, 30, 40, 41, expected_ebc(1, 98, 41, 40))
    assert d.panic_time == 0, "panic time must not move: 41/40 is under the threshold"
    m.set(50, 56)
    expect(d, 62, 55, 50, expected_ebc(1, 98, 56, 55))  # no longer in panic
    assert d.panic_time is None


def test_extend_panic_window():
    m = Metrics(11, 25)
    d = decider(params(1, 98), m)
    expect(d, 0, 10, 25, expected_ebc(1, 98, 25, 10))
    m.set(30, 80)
    expect(d, 30, 40, 80, expected_ebc(1, 98, 80, 40))
    assert d.panic_time == 30


def test_stable_mode_decrease():
    m = Metrics(100, 100)
    d = decider(params(10, 98), m)
    expect(d, 0, 8, 10, expected_ebc(10, 98, 100, 8))
    m.set(50, 50)
    expect(d, 0, 8, 5, expected_ebc(10, 98, 50, 8))


def test_stable_mode_no_traffic_scale_to_zero():
    m = Metrics(1, 0)
    d = decider(params(10, 75), m)
    expect(d, 0, 1, 1, expected_ebc(10, 75, 0, 1))
    m.stable = 0
    expect(d, 0, 1, 0, expected_ebc(10, 75, 0, 1))


def test_activation_scale():
    m = Metrics(0, 0)
    d = decider(params(10, 75, activation_scale=2), m)
    expect(d, 0, 1, 0, expected_ebc(10, 75, 0, 1))
    m.stable = 1
    expect(d, 0, 1, 2, expected_ebc(10, 75, 0, 1))


def test_panic_mode_exponential_track_and_stabilize():
    m = Metrics(6, 6)
    d = decider(params(1, 101), m)
    expect(d, 0, 1, 6, expected_ebc(1, 101, 6, 1))
    m.set(36, 36)
    expect(d, 10, 6, 36, expected_ebc(1, 101, 36, 6))
    assert d.panic_time == 10
    m.set(216, 216)
    expect(d, 11, 36, 216, expected_ebc(1, 101, 216, 36))
    assert d.panic_time == 11
    m.set(1296, 1296)
    expect(d, 11, 216, 1296, expected_ebc(1, 101, 1296, 216))
    expect(d, 12, 1296, 1296, expected_ebc(1, 101, 1296, 1296))


# TestAutoscalerScale: (label, target, tbc, stable, panic, ready, extra knobs, prep, want, ebc)
SCALE_CASES = [
    ("NoDataAtZeroNoAutoscale", 10, 100, 0, 0, 1, {}, None, 0, expected_ebc(10, 100, 0, 1)),
    ("StableModeUnlimitedTBC", 181, -1, 21, 26, 1, {}, None, 1, -1),
    ("0TBC", 10, 0, 50, 49, 1, {}, None, 5, 0),
    ("StableModeNoChange", 10, 100, 50, 50, 1, {}, None, 5, expected_ebc(10, 100, 50, 1)),
    ("PanicStableLargerThanPanic", 1, 100, 50, 30, 5, {}, "panicking", 50,
     expected_ebc(1, 100, 30, 5)),
    ("PanicStableLessThanPanic", 1, 100, 20, 30, 5, {}, "panicking", 30,
     expected_ebc(1, 100, 30, 5)),
    ("StableModeNoChangeAlreadyScaled", 10, 100, 50, 50, 5, {}, None, 5,
     expected_ebc(10, 100, 50, 5)),
    ("StableModeIncreaseWithSmallScaleUpRate", 1, 1982, 3, 3.1, 2,
     {"max_scale_up_rate": 1.1}, None, 3, expected_ebc(1, 1982, 3.1, 2)),
    ("StableModeDecreaseWithSmallScaleDownRate", 10, 1982, 1, 1, 100,
     {"max_scale_down_rate": 1.1}, None, 90, expected_ebc(10, 1982, 1, 100)),
    ("StableModeDecreaseNonReachable", 10, 1982, 1, 1, 100,
     {"max_scale_down_rate": 1.1}, "unreachable", 1, expected_ebc(10, 1982, 1, 100)),
    ("PanicModeDoublePodCount", 10, 84, 50, 100, 1, {}, None, 10, expected_ebc(10, 84, 100, 1)),
]  # fmt: skip


@pytest.mark.parametrize(
    "target,tbc,stable,panic,ready,knobs,prep,want,want_ebc",
    [pytest.param(*c[1:], id=c[0]) for c in SCALE_CASES],
)
def test_autoscaler_scale(target, tbc, stable, panic, ready, knobs, prep, want, want_ebc):
    d = decider(params(target, tbc, **knobs), Metrics(stable, panic), ready=1, now=100.0)
    if prep == "panicking":
        d.panic_time, d.max_panic_pods = 95.0, 5
    elif prep == "unreachable":
        d.reachable = False
    expect(d, 100.0, ready, want, want_ebc)


def test_panic_then_unpanic_scale_down():
    m = Metrics(100, 100)
    d = decider(params(10, 93), m)
    expect(d, 0, 1, 10, expected_ebc(10, 93, 100, 1))
    m.panic = 1000
    expect(d, 1, 10, 100, expected_ebc(10, 93, 1000, 10))
    m.set(1, 1)  # traffic dropped off: scale stays, still in panic
    expect(d, 31, 10, 100, expected_ebc(10, 93, 1, 10))
    expect(d, 62, 10, 1, expected_ebc(10, 93, 1, 10))  # after the stable window


def test_rate_limit_scale_up():
    m = Metrics(1000, 1001)
    d = decider(params(10, 61), m)
    expect(d, 0, 1, 10, expected_ebc(10, 61, 1001, 1))  # needs 100 pods, only x10
    expect(d, 0, 10, 100, expected_ebc(10, 61, 1001, 10))  # x10 again


def test_rate_limit_scale_down():
    m = Metrics(1, 1)
    d = decider(params(10, 61), m)
    expect(d, 0, 100, 10, expected_ebc(10, 61, 1, 100))  # needs 1 pod, only /10
    expect(d, 0, 10, 1, expected_ebc(10, 61, 1, 10))


def test_use_one_pod_as_minimum_if_no_ready_pods():
    d = decider(params(10, 81), Metrics(1000, 888))
    expect(d, 0, 0, 10, expected_ebc(10, 81, 888, 0))


@pytest.mark.parametrize("ready,panicking", [(0, False), (1, False), (2, True)])
def test_start_in_panic_mode(ready, panicking):
    p = KPAParams(
        container_concurrency_target_default=120.0,
        target=None,
        target_utilization_percentage=100 / 120,
        target_burst_capacity=11.0,
        panic_threshold_percentage=22000.0,
    )
    d = Decider(p, Metrics(10, 10), now=0.0, ready=ready)
    assert d.panicking is panicking
    assert d.max_panic_pods == ready
