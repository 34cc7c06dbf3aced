"""Window averages of 1 s buckets: Knative's linear mean with its missing-data rules,
the weighted-exponential variant, and the scale-down-delay sliding max."""

from __future__ import annotations

import pytest

from harness.kpa.aggregation import LinearBuckets, WeightedBuckets, make_buckets, round6
from harness.kpa.maxwindow import MaxWindow


def linear(window: int, writes: list[tuple[float, float]]) -> LinearBuckets:
    b = LinearBuckets(window)
    for t, v in writes:
        b.record(t, v)
    return b


@pytest.mark.parametrize(
    ("window", "writes", "now", "want"),
    [
        pytest.param(5, [(0, 10), (1, 20)], 1, 15.0, id="partial window at start divides by 2"),
        # window at t=6 covers 2..6: (3+4+5+6+7)/5
        pytest.param(5, [(t, t + 1) for t in range(7)], 6, 5.0, id="full window plain mean"),
        pytest.param(4, [(0, 10), (1, 10), (2, 5), (3, 5)], 3, 7.5, id="upstream example 7.5"),
        # t=4: window 1..4, bucket 4 missing -> dropped: (10+5+5)/3
        pytest.param(4, [(0, 10), (1, 10), (2, 5), (3, 5)], 4, 6.666667,
                     id="trailing gap dropped not zero"),
        pytest.param(4, [(0, 10), (1, 10), (2, 5), (3, 5)], 5, 5.0, id="trailing gap of 2"),
        pytest.param(4, [(0, 10), (1, 10), (2, 5), (3, 5)], 6, 5.0, id="trailing gap of 3"),
        pytest.param(4, [(0, 10), (1, 10), (2, 5), (3, 5)], 7, 0.0,
                     id="no write for a window gives 0"),
        # buckets 0..3 with 1 and 2 empty: (10+0+0+10)/4
        pytest.param(5, [(0, 10), (3, 10)], 3, 5.0, id="interior gap counts as zeros"),
        # gap of 4 < window: (10+0+0+0+4)/5
        pytest.param(5, [(0, 10), (4, 4)], 4, 2.8, id="gap shorter than window keeps history"),
        # gap of 5 = window: fresh partial window holding only the new write
        pytest.param(5, [(0, 10), (5, 4)], 5, 4.0, id="write after a window resets first write"),
        pytest.param(3, [(0, 1)], 2, 1.0, id="single write then trailing gap"),
        pytest.param(3, [(0, 1), (0.5, 2)], 0, 3.0, id="writes in one second add up"),
        pytest.param(3, [(0, 1), (1, 0), (2, 0)], 2, 0.333333, id="rounded to 6 decimals down"),
        pytest.param(3, [(0, 1), (1, 1), (2, 0)], 2, 0.666667, id="rounded to 6 decimals up"),
        pytest.param(3, [], 0, 0.0, id="never written gives 0"),
    ],
)
def test_linear_average_follows_knative_missing_data_rules(window, writes, now, want):
    assert linear(window, writes).average(now) == want


def test_linear_window_of_180_falls_in_a_straight_line_after_traffic_stops():
    # knative-kpa.md §11(b): S(t) = 8.5 * (180 - t) / 180
    b = linear(180, [(t, 8.5) for t in range(-179, 1)])
    for t in range(1, 200):
        b.record(t, 0.0)
        assert b.average(t) == round6(8.5 * max(0, 180 - t) / 180), t


def test_is_empty_only_after_more_than_a_window_without_writes():
    b = linear(5, [(0, 1)])
    assert not b.is_empty(5)
    assert b.is_empty(6)
    assert LinearBuckets(5).is_empty(0)


def test_write_into_the_past_is_refused():
    b = linear(5, [(3, 1)])
    with pytest.raises(ValueError):
        b.record(2, 1)


def test_running_total_matches_a_fresh_sum_after_many_writes():
    b = LinearBuckets(7)
    values = [(t * 37 % 11) / 3 for t in range(1000)]
    for t, v in enumerate(values):
        b.record(t, v)
    assert b.average(999) == round6(sum(values[-7:]) / 7)


def test_weighted_alpha_has_a_floor_of_0_2():
    assert WeightedBuckets(180).alpha == 0.2
    # 1 - 0.0001 ** (1/18) = 1 - 10 ** (-4/18)
    assert WeightedBuckets(18).alpha == pytest.approx(0.400516, abs=1e-6)
    assert WeightedBuckets(4).alpha == pytest.approx(0.9)


def test_weighted_average_weights_newest_bucket_most():
    b = WeightedBuckets(4)  # alpha 0.9
    for t, v in enumerate([10, 10, 5, 5]):
        b.record(t, v)
    # newest first: 0.9*5 + 0.09*5 + 0.009*10 + 0.0009*10
    assert b.average(3) == pytest.approx(5.049)
    # one missing trailing bucket counts as 0: 0.09*5 + 0.009*5 + 0.0009*10
    assert b.average(4) == pytest.approx(0.504)
    assert b.average(7) == 0.0


def test_weighted_average_with_alpha_0_6_reproduces_upstream_5_544():
    b = WeightedBuckets(4)
    b.alpha = 0.6
    b._weights = [0.6 * 0.4**i for i in range(4)]
    for t, v in enumerate([10, 10, 5, 5]):
        b.record(t, v)
    assert b.average(3) == pytest.approx(5.544)


def test_make_buckets_picks_the_algorithm():
    assert isinstance(make_buckets("linear", 6), LinearBuckets)
    assert isinstance(make_buckets("weighted-exponential", 6), WeightedBuckets)
    assert isinstance(make_buckets("weightedExponential", 6), WeightedBuckets)
    with pytest.raises(ValueError):
        make_buckets("median", 6)


@pytest.mark.parametrize(("delay", "slots"), [(60, 30), (61, 31), (1, 1), (2, 1), (3, 2)])
def test_delay_window_has_ceil_delay_over_2s_slots(delay, slots):
    assert MaxWindow(delay).size == slots


def test_delay_window_holds_a_value_for_the_whole_delay():
    w = MaxWindow(60)
    w.record(16, 10)
    for t in range(18, 76, 2):
        w.record(t, 9)
        assert w.current() == 10, t
    w.record(76, 9)  # slot 38 - 30 = 8 = slot of t=16: aged out
    assert w.current() == 9


def test_delay_window_passes_increases_at_once_and_keeps_later_maxima():
    w = MaxWindow(10)  # 5 slots
    seq = [(0, 5), (2, 3), (4, 4), (6, 8), (8, 1), (10, 1), (12, 1), (14, 1), (16, 1)]
    want = [5, 5, 5, 8, 8, 8, 8, 8, 1]
    got = []
    for t, v in seq:
        w.record(t, v)
        got.append(w.current())
    assert got == want


def test_delay_window_keeps_the_larger_of_two_records_in_one_slot():
    w = MaxWindow(4)
    w.record(2, 3)
    w.record(3, 7)  # a poke in the same 2 s slot
    w.record(3, 1)
    assert w.current() == 7
    assert MaxWindow(4).current() == 0


def test_resize_keeps_the_newest_buckets_like_resize_window() -> None:
    """``ResizeWindow``: the newest min(old, new) buckets survive; the first write becomes
    ``last - (old buckets - 1)``; a window with no recent write starts empty."""
    b = LinearBuckets(6)
    for t in range(100, 106):
        b.record(t, float(t - 99))  # 1..6
    b.resize(3, 105.5)
    assert b.n == 3 and b.window == 3.0
    assert b.average(105) == (4 + 5 + 6) / 3
    assert b.first_write == 100  # 105 - (6 - 1), as upstream
    b.resize(10, 105.5)
    assert b.first_write == 103 and b.n == 10
    assert b.average(105) == (4 + 5 + 6) / 3
    stale = LinearBuckets(4)
    stale.record(10, 5.0)
    stale.resize(8, 20.0)
    assert stale.last_write is None and stale.average(20) == 0.0
    w = WeightedBuckets(10)
    alpha = w.alpha
    w.record(1, 1.0)
    w.resize(60, 1.0)
    assert w.alpha < alpha
