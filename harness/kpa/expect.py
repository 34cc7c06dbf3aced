"""When the reference model expects an event of a planned scenario: the waits of the suites.

A suite plays a known load against a service in a known start state and then waits for
an event (one pod left, zero pods, the first pod removed). :func:`event_time` runs
:func:`~harness.kpa.simulate` on the planned per-second load under the effective
parameters, once per variant of what the plan cannot pin down (pod start-up from 0 to
``pod_startup`` seconds, the phase of the 2 s decider tick against the load), and returns
the earliest and the latest time of the event over the variants. Events are conditions
on the simulation's rows (:data:`~harness.kpa.simulate.COLUMNS`); the event's time is the
first tick from which the condition holds until the end of the simulated span (so a
momentary dip is not the event), or, for :func:`first_step_down`, the first tick where
it holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from harness.kpa.simulate import simulate
from harness.params import KPAParams

__all__ = ["Event", "EventTime", "at_most", "event_time", "first_step_down", "zero"]

LOOKAHEAD_S = 120.0
"""Simulated seconds after the event, to see that it holds."""


@dataclass(frozen=True)
class Event:
    """A condition on simulated ticks, in words and as a function of the frame."""

    what: str
    holds: Callable[[pd.DataFrame], pd.Series]
    stays: bool = True
    """True: the event is the first tick from which ``holds`` stays true; False: the
    first tick where it is true."""


def at_most(n: int) -> Event:
    """At most ``n`` pods ready, and the PA asks for no more."""
    return Event(f"ready pods <= {n}",
                 lambda s: (s["ready"] <= n) & (s["desired"] <= n) & (s["replicas"] <= n))


def zero() -> Event:
    """No pod left: replicas 0 (the PA Inactive, retention over)."""
    return Event("zero pods", lambda s: (s["ready"] == 0) & (s["replicas"] == 0))


def first_step_down(after: float = 0.0) -> Event:
    """The first tick after ``after`` whose replicas are below the previous tick's."""

    def holds(s: pd.DataFrame) -> pd.Series:
        return (s["replicas"] < s["replicas"].shift(1)) & (s["t"] >= after)

    return Event("first pod removed", holds, stays=False)


@dataclass(frozen=True)
class EventTime:
    """Seconds after the scenario's t = 0 at which the model sees the event (None when it
    never happens in the simulated span), earliest and latest over the variants."""

    what: str
    earliest: float | None
    latest: float | None
    span_s: float
    """How far the model was run."""

    @property
    def reached(self) -> bool:
        return self.latest is not None


def _first(sim: pd.DataFrame, event: Event) -> float | None:
    ok = event.holds(sim).to_numpy(bool)
    if not ok.any():
        return None
    if not event.stays:
        return float(sim["t"].to_numpy()[ok.argmax()])
    if not ok[-1]:
        return None
    bad = (~ok).nonzero()[0]
    i = 0 if len(bad) == 0 else int(bad[-1]) + 1
    return float(sim["t"].to_numpy()[i])


def event_time(
    params: KPAParams,
    load: Sequence[float],
    event: Event,
    *,
    initial_ready: int = 1,
    fresh: bool = False,
    pod_startup: float = 0.0,
    horizon: float | None = None,
) -> EventTime:
    """When ``event`` happens under ``load`` (per-second revision-wide totals from t = 0,
    then nothing), over pod start-ups 0 and ``pod_startup`` and a one-second tick phase.

    ``horizon``: seconds to simulate (default: the load, the stable window, the delay,
    max(grace, retention) and :data:`LOOKAHEAD_S`, twice over for the rate-limited steps).
    """
    p = params
    if horizon is None:
        horizon = 2 * (len(load) + p.stable_window + p.scale_down_delay
                       + max(p.scale_to_zero_grace_period,
                             p.scale_to_zero_pod_retention_period)) + LOOKAHEAD_S
        horizon += (p.max_scale or 10) * (p.scale_down_delay + 2.0)
    until = float(math.ceil(horizon))
    found: list[float] = []
    for startup in sorted({0.0, float(pod_startup)}):
        for shift in (0, 1):
            trace = [0.0] * shift + [float(x) for x in load]
            sim = simulate(p, trace, startup, initial_ready=initial_ready, fresh=fresh,
                           history=0.0 if fresh else None, until=until + shift)
            t = _first(sim, event)
            if t is not None:
                found.append(max(0.0, t - shift))
            else:
                return EventTime(event.what, min(found) if found else None, None, until)
    return EventTime(event.what, min(found), max(found), until)
