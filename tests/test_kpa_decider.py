"""The decider's formulas and state machine (knative-kpa.md §6), tick by tick.

Cases are in the spirit of upstream ``pkg/autoscaler/scaling/autoscaler_test.go``; each
expected value is worked out by hand from the spec in the comment beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from harness.kpa.decider import Decider, ScaleResult, initial_ebc
from harness.params import KPAParams

# T = TOT x u = 10 x 1.0 = 10 (cc 10 at 100 %); TBC 0 unless a case says otherwise.
BASE = KPAParams(
    container_concurrency=10,
    container_concurrency_target_percentage=1.0,
    target_burst_capacity=0,
    stable_window=60,
    max_scale_up_rate=1000,
    max_scale_down_rate=2,
)


@dataclass
class Fixed:
    """A metric source with fixed S and P (None: no data)."""

    s: float = 0.0
    p: float = 0.0
    none: bool = False

    def stable_and_panic(self, now: float) -> tuple[float, float] | None:
        return None if self.none else (self.s, self.p)


def decide(params: KPAParams, s: float, p: float, ready: int, **kw) -> ScaleResult:
    d = Decider(params, Fixed(s, p), now=0.0, ready=min(ready, 1), **kw)
    return d.scale(2.0, ready)


@pytest.mark.parametrize(
    ("name", "changes", "s", "p", "ready", "want"),
    [
        ("stable mode is ceil(S / T)", {}, 50, 50, 5, 5),  # 50/10
        ("a fraction of a pod rounds up", {}, 51, 51, 5, 6),  # ceil(5.1)
        # dspc = 100 but maxUp = ceil(10 x 1) = 10; panic (100/1 >= 2) takes max(10, 10)
        ("scale-up is limited by the rate on ready pods", {"max_scale_up_rate": 10},
         1000, 1000, 1, 10),
        # upstream comment: MSUR 1.1, OCC 3, RPC 2, TV 1 -> ceil(2.2) = 3, not floor
        ("one more pod is always allowed up", {"max_scale_up_rate": 1.1,
         "container_concurrency": 1}, 3, 3, 2, 3),
        # floor(100 / 2) = 50 although ceil(1/10) = 1
        ("scale-down is limited by the rate on ready pods", {}, 1, 1, 100, 50),
        # floor(3 / 2) = 1: 3 -> 1 in one tick
        ("floor of the down rate", {}, 0, 0, 3, 1),
        # floor(10 / 1.1) = 9: one pod per tick below 12 pods (§11 b)
        ("rate 1.1 from 10 pods goes to 9", {"max_scale_down_rate": 1.1}, 0, 0, 10, 9),
        ("rate 1.1 from 12 pods goes to 10", {"max_scale_down_rate": 1.1}, 0, 0, 12, 10),
        ("rate allows 1 -> 0", {"max_scale_down_rate": 1.1}, 0, 0, 1, 0),
        # R = 0 counts as 1: maxUp = ceil(10 x 1) = 10
        ("zero ready pods count as one", {"max_scale_up_rate": 10}, 1000, 1000, 0, 10),
        # dspc = 1 raised to activation-scale 3
        ("activation scale floors non-zero demand", {"activation_scale": 3}, 5, 5, 1, 3),
        ("activation scale leaves zero alone", {"activation_scale": 3}, 0, 0, 1, 0),
        # dppc = 2, R1 = 1: 2/1 >= 2 -> panic -> max(stable 1, panic 2) = 2
        ("panic takes the larger panic count", {}, 5, 15, 1, 2),
        # dppc = 3, 3/2 = 1.5 < 2: stays stable, ceil(5/10) = 1 but maxDown floor(2/2) = 1
        ("under the threshold the panic value is ignored", {}, 5, 25, 2, 1),
        # T = 100 x 0.7 = 70 (cc 0 uses container-concurrency-target-default)
        ("soft limit uses the default total and utilization",
         {"container_concurrency": 0, "container_concurrency_target_percentage": 0.7},
         140, 140, 2, 2),
        # T = 0.85: ceil(1 / 0.85) = 2, one request needs two pods (§12.4)
        ("cc 1 at 85 percent needs 2 pods for 1 request",
         {"container_concurrency": 1, "container_concurrency_target_percentage": 0.85},
         1, 1, 2, 2),
    ],
)
def test_decider_formula(name, changes, s, p, ready, want):
    assert decide(replace(BASE, **changes), s, p, ready).desired == want


def test_unreachable_revision_drops_straight_down():
    # maxDown = 0 when unreachable: ceil(1/10) = 1 from 100 pods
    assert decide(BASE, 1, 1, 100, reachable=False).desired == 1
    assert decide(BASE, 1, 1, 100, reachable=True).desired == 50


def test_panic_threshold_compares_the_raw_panic_count_not_the_clamped_one():
    params = replace(BASE, max_scale_up_rate=1.1, container_concurrency=1)
    # dppc = 4, 4/2 = 2 >= 2 -> panic although maxUp = ceil(2.2) = 3 caps the result
    r = decide(params, 4, 4, 2)
    assert (r.desired, r.panic_mode) == (3, True)


@pytest.mark.parametrize(
    ("tbc", "ready", "p", "want"),
    [
        (211, 5, 20, -181),  # floor(5 x 10 - 211 - 20)
        (20, 5, 25, 5),  # floor(50 - 20 - 25)
        (20, 5, 25.5, 4),  # floor(4.5)
        (20, 0, 0, -20),  # R, not R1: floor(0 - 20 - 0)
        (0, 5, 100, 0),
        (-1, 5, 0, -1),
    ],
)
def test_excess_burst_capacity(tbc, ready, p, want):
    assert decide(replace(BASE, target_burst_capacity=tbc), p, p, ready).ebc == want


@pytest.mark.parametrize(
    ("tbc", "initial", "want"),
    [(211, 1, -201), (5, 3, 25), (0, 1, 0), (-1, 1, -1)],  # 1x10-211, 3x10-5
)
def test_initial_ebc_is_initial_scale_times_total_minus_tbc(tbc, initial, want):
    assert initial_ebc(replace(BASE, target_burst_capacity=tbc, initial_scale=initial)) == want


def test_no_data_gives_an_invalid_result():
    d = Decider(BASE, Fixed(none=True), now=0.0, ready=1)
    r = d.scale(2.0, 1)
    assert not r.valid


def run_ticks(decider: Decider, src: Fixed, steps: list[tuple[float, float, float, int]]):
    """steps: (t, S, P, ready) -> [(desired, panic_mode)]"""
    out = []
    for t, s, p, ready in steps:
        src.s, src.p = s, p
        r = decider.scale(t, ready)
        out.append((r.desired, r.panic_mode))
    return out


def test_panic_never_scales_down_and_ends_a_stable_window_after_the_last_over_tick():
    src = Fixed()
    d = Decider(BASE, src, now=0.0, ready=1)
    got = run_ticks(d, src, [
        (0, 5, 25, 1),  # dppc 3, 3/1 >= 2: panic, max(1, 3) = 3
        (2, 5, 5, 3),  # not over; ratchet keeps 3 (stable would be max(1, floor(3/2)) = 1)
        (30, 5, 65, 3),  # dppc 7, 7/3 >= 2: extends panic to 30 and ratchets to 7
        (60, 5, 5, 7),  # 30 + 60 < 60? no: still 7
        (90, 5, 5, 7),  # 30 + 60 < 90? no (strict): still 7
        (92, 5, 5, 7),  # 90 < 92: un-panic; stable max(1, floor(7/2) = 3) = 3
    ])
    assert got == [(3, True), (3, True), (7, True), (7, True), (7, True), (3, False)]
    assert d.max_panic_pods == 0


def test_decider_created_over_more_than_one_pod_starts_in_panic_and_keeps_the_scale():
    src = Fixed(0, 0)
    d = Decider(BASE, src, now=0.0, ready=5)
    assert d.panicking and d.max_panic_pods == 5
    # S = P = 0: stable would be floor(5/2) = 2; the start-up panic holds 5 for 60 s
    got = run_ticks(d, src, [(2, 0, 0, 5), (60, 0, 0, 5), (62, 0, 0, 5)])
    assert got == [(5, True), (5, True), (2, False)]


@pytest.mark.parametrize("ready", [0, 1])
def test_decider_created_over_one_pod_or_none_is_not_panicking(ready):
    assert not Decider(BASE, Fixed(), now=0.0, ready=ready).panicking


def test_scale_down_delay_holds_the_maximum_of_the_last_delay_seconds():
    params = replace(BASE, scale_down_delay=10)  # 5 slots of 2 s
    src = Fixed()
    d = Decider(params, src, now=0.0, ready=1)
    steps = [(t, 50 if t == 0 else 10, 10, 5) for t in range(0, 14, 2)]
    got = [x[0] for x in run_ticks(d, src, steps)]
    # 5 at t=0 (slot 0) stays through t=8; at t=10 (slot 5) it has aged out -> floor(5/2)=2..
    # stable: ceil(10/10) = 1 but maxDown = floor(5/2) = 2
    assert got == [5, 5, 5, 5, 5, 2, 2]


def test_scale_down_delay_lets_scale_up_through_at_once():
    params = replace(BASE, scale_down_delay=60)
    src = Fixed()
    d = Decider(params, src, now=0.0, ready=1)
    got = [x[0] for x in run_ticks(d, src, [(0, 10, 10, 1), (2, 30, 30, 1)])]
    # ceil(30/10) = 3, P 30: 3/1 >= 2 -> panic too; the window passes the increase
    assert got == [1, 3]


def test_scale_down_delay_is_skipped_for_unreachable_revisions():
    params = replace(BASE, scale_down_delay=60)
    src = Fixed()
    d = Decider(params, src, now=0.0, ready=1, reachable=False)
    got = [x[0] for x in run_ticks(d, src, [(0, 50, 50, 5), (2, 10, 10, 5)])]
    assert got == [5, 1]
