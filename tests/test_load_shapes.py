"""Shape math as pure functions of elapsed time: levels, integrals, the arrival schedule."""

from __future__ import annotations

import math

import pytest

from harness.load.profile import parse_profile
from harness.load.shapes import (
    arrival_times,
    arrivals_before,
    arrivals_integral,
    cumulative,
    level,
    offered_per_second,
    target_at,
    users_at,
)


def profile(*segments, **top):
    return parse_profile({"segments": list(segments), **top}, where="test")


SEGMENTS = {
    "constant": {"shape": "constant", "duration": "10s", "rate": 7},
    "idle": {"shape": "idle", "duration": "10s"},
    "ramp": {"shape": "ramp", "duration": "10s", "rate": {"from": 2, "to": 12}},
    "step": {"shape": "step", "duration": "9s", "rate": {"levels": [1, 5, 3]}},
    "spike": {"shape": "spike", "duration": "10s",
              "rate": {"base": 2, "peak": 20, "at": "3s", "width": "2s"}},
    "burst": {"shape": "burst", "duration": "10s",
              "rate": {"baseline": 2, "capacity": 5, "multiple": 3, "at": "4s"}},
    "sine": {"shape": "sine", "duration": "10s",
             "rate": {"mean": 10, "amplitude": 6, "period": "8s", "phase": 30}},
}


@pytest.mark.parametrize("name", sorted(SEGMENTS))
def test_cumulative_is_the_integral_of_level(name):
    seg = profile(SEGMENTS[name]).segments[0]
    n = 20000
    dt = seg.duration / n
    integral = 0.0
    for i in range(n):
        integral += level(seg, (i + 0.5) * dt) * dt
        if i % 4000 == 3999:
            assert cumulative(seg, (i + 1) * dt) == pytest.approx(integral, rel=1e-3, abs=1e-2)
    assert cumulative(seg, seg.duration) == pytest.approx(integral, rel=1e-3, abs=1e-2)


def test_levels_at_chosen_times():
    segs = {k: profile(v).segments[0] for k, v in SEGMENTS.items()}
    assert level(segs["constant"], 3.3) == 7
    assert level(segs["idle"], 5) == 0
    assert [level(segs["ramp"], t) for t in (0, 5, 10)] == [2, 7, 12]
    assert [level(segs["step"], t) for t in (0, 2.99, 3, 6.5, 8.99)] == [1, 1, 5, 3, 3]
    assert [level(segs["spike"], t) for t in (2.99, 3, 4.99, 5)] == [2, 20, 20, 2]
    assert [level(segs["burst"], t) for t in (3.99, 4, 9.9)] == [2, 15, 15]
    s = segs["sine"]
    assert level(s, 0) == pytest.approx(10 + 6 * math.sin(math.radians(30)))
    assert level(s, 2) == pytest.approx(10 + 6 * math.sin(math.pi / 2 + math.radians(30)))


def test_trace_levels(tmp_path):
    (tmp_path / "t.csv").write_text("second,value\n0,4\n3,10\n5,1\n")
    (tmp_path / "p.yaml").write_text(
        "segments:\n  - {shape: trace, concurrency: {file: t.csv, scale: 2}}\n")
    from harness.load.profile import read_load_profile

    prof = read_load_profile(tmp_path / "p.yaml")
    seg = prof.segments[0]
    assert prof.total == 6
    assert [level(seg, t) for t in range(6)] == [8, 8, 8, 20, 20, 2]
    assert cumulative(seg, 4.5) == 8 * 3 + 20 * 1.5


def test_profile_targets_and_users():
    prof = profile(
        {"shape": "constant", "duration": "2s", "concurrency": 3},
        {"shape": "idle", "duration": "1s"},
        {"shape": "ramp", "duration": "4s", "concurrency": {"from": 1, "to": 5}},
        {"shape": "constant", "duration": "1s", "rate": 9},
    )
    assert prof.total == 8
    assert target_at(prof, 1.9) == ("concurrency", 3)
    assert target_at(prof, 2.5) == ("idle", 0)
    assert [users_at(prof, t) for t in (0, 2, 3, 4, 5, 6, 7)] == [3, 0, 1, 2, 3, 4, 0]
    assert users_at(prof, 8) is None and target_at(prof, 8.01) is None
    assert offered_per_second(prof) == [
        (0, "concurrency", 3), (1, "concurrency", 3), (2, "idle", 0), (3, "concurrency", 1),
        (4, "concurrency", 2), (5, "concurrency", 3), (6, "concurrency", 4), (7, "rate", 9)]


@pytest.mark.parametrize("name", sorted(SEGMENTS))
def test_arrival_schedule_matches_the_integral(name):
    prof = profile({"shape": "constant", "duration": "1s", "concurrency": 2}, SEGMENTS[name])
    times = list(arrival_times(prof))
    assert times == sorted(times)
    assert len(times) == arrivals_before(prof, prof.total)
    assert all(1.0 <= t <= prof.total for t in times)  # nothing in the closed-loop second
    for s in range(int(prof.total)):
        in_second = sum(1 for t in times if s <= t < s + 1)
        assert in_second == arrivals_before(prof, s + 1) - arrivals_before(prof, s)
    if prof.segments[1].mode == "rate":
        assert [o for _, m, o in offered_per_second(prof) if m == "rate"] == [
            arrivals_before(prof, s + 1) - arrivals_before(prof, s)
            for s in range(1, 1 + int(prof.segments[1].duration))]
    else:
        assert times == []


def test_constant_rate_is_evenly_spaced_and_workers_share_it():
    prof = profile({"shape": "constant", "duration": "2s", "rate": 10})
    times = list(arrival_times(prof))
    assert times == pytest.approx([0.05 + 0.1 * k for k in range(20)])
    shares = [list(arrival_times(prof, index=i, stride=3)) for i in range(3)]
    assert sorted(t for share in shares for t in share) == pytest.approx(times)
    assert [len(s) for s in shares] == [7, 7, 6]


def test_ramp_arrivals_follow_the_rate():
    prof = profile({"shape": "ramp", "duration": "10s", "rate": {"from": 0, "to": 100}})
    assert arrivals_integral(prof, 10) == pytest.approx(500)
    per_second = [o for _, _, o in offered_per_second(prof)]
    assert sum(per_second) == 500
    assert per_second == pytest.approx([5 + 10 * s for s in range(10)], abs=1)


def test_schedule_is_finite_for_long_profiles():
    prof = profile({"shape": "sine", "duration": "1h",
                    "rate": {"mean": 2, "amplitude": 2, "period": "10m"}})
    assert sum(1 for _ in arrival_times(prof)) == arrivals_before(prof, 3600) == 7200
