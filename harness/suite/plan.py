"""What each suite plays and waits for, and how long that takes, from the reference model.

A suite's scenario is a service (a fixture in ``fixtures/isvc/`` with the suite's patch
and annotations), a load profile played from a known start state, and the event it then
waits for (one pod left, zero pods). :func:`wait_for` asks the reference model
(:func:`harness.kpa.expect.event_time`) when that event comes under the effective
parameters and the planned load, and adds the named error budget: the deadline of the
wait. :func:`needs_s` adds up a suite's deploys, loads and waits: the expected time
that ``needs_time`` reports, the pytest timeout, the longest-first schedule and the
progress line all use. No suite writes a formula of stable window and delay itself.

The planned load is the profile's offered level per second: users for closed-loop
segments, arrivals times the service's planned latency for open-loop ones (Little's law).
Pods are planned to start within :data:`PLANNED_POD_STARTUP` seconds (the model's
variants cover 0 to that).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from harness.checks.verdict import (
    ACTUATION,
    DECISION_TICK,
    DEFAULT_ACTUATION,
    DEFAULT_OBSERVATION_LATENCY,
    METRIC_PERIOD,
    OBSERVATION_LATENCY,
    Budget,
)
from harness.kpa.expect import Event, EventTime, at_most, event_time, first_step_down, zero
from harness.objects import AUTOSCALING_PREFIX
from harness.params import BUCKET_SIZE, TICK_INTERVAL, KPAParams

__all__ = [
    "DEPLOY_S",
    "PLANNED_POD_STARTUP",
    "Service",
    "Wait",
    "after_load",
    "extended_load",
    "isvc_params",
    "load_s",
    "needs_s",
    "planned_load",
    "to_pods",
    "to_zero",
    "wait_for",
]

PLANNED_POD_STARTUP = 5.0
"""Seconds from a scale-up decision to a ready pod that the plan allows (the emulator's
model servers start in one or two; a real small model in about five)."""
PLANNED_LATENCY_S = 0.1
"""The reference service's answer time (``REQUEST_LATENCY`` of ``cpu-small``)."""
DEPLOY_S = 20.0
"""Apply an InferenceService and see it Ready, plus the namespace around it."""
LOAD_START_S = 5.0
"""Starting the load generator (a Locust child process) and its drain after the last
segment."""
TEARDOWN_S = 15.0
"""Deleting the namespace and saving the case at the end of a test."""


@dataclass(frozen=True)
class Service:
    """The InferenceService a suite deploys: fixture name, patch and annotations, as
    ``deploy_isvc`` takes them."""

    source: str = "cpu-small"
    patch: Mapping[str, Any] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.patch:
            out["patch"] = dict(self.patch)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


def isvc_params(p: KPAParams, service: Service) -> KPAParams:
    """The profile's parameters with the service's replicas, containerConcurrency and
    annotations applied (as :func:`harness.resolve.resolve` reads an InferenceService; the
    suites pass the resolved parameters of the deployed service instead, which already
    have them)."""
    from harness.knobs import parse_annotations
    from harness.objects import merge_patch
    from harness.suite.case import load_isvc

    doc = merge_patch(load_isvc(service.source), service.patch)
    pred = (doc.get("spec") or {}).get("predictor") or {}
    changes: dict[str, Any] = {}
    for key, name in (("minReplicas", "min_scale"), ("maxReplicas", "max_scale"),
                      ("containerConcurrency", "container_concurrency")):
        if key in pred:
            changes[name] = int(pred[key])
    ann = {**((doc.get("metadata") or {}).get("annotations") or {}), **service.annotations}
    ann = {k: v for k, v in ann.items() if k.startswith(AUTOSCALING_PREFIX)}
    if ann:
        changes.update(parse_annotations(ann).values)
    return replace(p, **changes)


@cache
def _load_profile(name: str) -> Any:
    from harness.load.profile import read_load_profile
    from harness.suite.case import profile_path

    return read_load_profile(profile_path(name))


def planned_load(profile: str | Any) -> list[float]:
    """Per-second concurrency the load profile offers (a name or a loaded profile)."""
    from harness.load.shapes import offered_per_second

    prof = _load_profile(profile) if isinstance(profile, str) else profile
    return [x * PLANNED_LATENCY_S if mode == "rate" else x
            for _, mode, x in offered_per_second(prof)]


def load_s(profile: str | Any) -> float:
    """Seconds a load takes to play: its profile, the generator's start and drain."""
    prof = _load_profile(profile) if isinstance(profile, str) else profile
    return float(prof.total) + LOAD_START_S


def budget() -> Budget:
    """The error allowed between the model's event and the cluster's: the decision tick,
    the metric period, the observation latency and the actuation (patch, Deployment,
    pod deletion), the same terms the checks' deadlines allow."""
    return Budget({DECISION_TICK: TICK_INTERVAL, METRIC_PERIOD: BUCKET_SIZE,
                   OBSERVATION_LATENCY: DEFAULT_OBSERVATION_LATENCY,
                   ACTUATION: DEFAULT_ACTUATION})


@dataclass(frozen=True)
class Wait:
    """A suite's wait: the event, the model's time of it after the anchor, the budget."""

    what: str
    """What the suite waits for, in words (``scale-down to one pod``)."""
    event: str
    """The model's event (``ready pods <= 1``)."""
    model_s: float
    """The latest time over the model's variants, seconds after ``anchor``."""
    budget: Budget
    anchor: str
    """What the time counts from (``the load's start``)."""
    expected: int | None = None
    """The pods expected at the event (for the not-reached message)."""

    @property
    def deadline_s(self) -> float:
        return self.model_s + self.budget.total

    def describe(self) -> str:
        return (f"{self.event} by {self.deadline_s:.0f} s after {self.anchor} (model "
                f"{self.model_s:g} s + {self.budget.describe()})")


def wait_for(
    p: KPAParams,
    event: Event,
    *,
    what: str,
    load: str | Any | None = None,
    initial_ready: int | None = None,
    fresh: bool = True,
    anchor: str = "the load's start",
    expected: int | None = None,
) -> Wait:
    """The wait for ``event`` after ``load`` (None: no traffic) starts: the model's
    latest time plus :func:`budget`. ``initial_ready`` defaults to the service's start
    (max(minReplicas, initial-scale)); ``fresh``: the revision was just created."""
    trace = planned_load(load) if load is not None else [0.0]
    r0 = initial_ready if initial_ready is not None else max(p.min_scale, p.initial_scale)
    t: EventTime = event_time(p, trace, event, initial_ready=r0, fresh=fresh,
                              pod_startup=PLANNED_POD_STARTUP)
    if t.latest is None:
        raise ValueError(f"the reference model never reaches '{event.what}' within "
                         f"{t.span_s:g} s under these parameters")
    return Wait(what, event.what, t.latest, budget(), anchor, expected)


def to_pods(p: KPAParams, n: int, *, what: str, load: str | Any) -> Wait:
    """Wait for at most ``n`` ready pods after ``load``."""
    return wait_for(p, at_most(n), what=what, load=load, expected=n)


def to_zero(p: KPAParams, *, what: str, load: str | Any | None = None,
            anchor: str = "the load's start") -> Wait:
    """Wait for zero pods after ``load`` (None: from the service's deploy, idle)."""
    return wait_for(p, zero(), what=what, load=load, anchor=anchor, expected=0)


def extended_load(p: KPAParams, profile: str | Any, *, initial_ready: int = 0) -> Any:
    """``profile`` with its last segment held until the model's first pod removal after
    the first segment, plus the budget and the observation latency: so that requests are
    in flight while a pod goes (the scale-down phase has evidence)."""
    prof = _load_profile(profile) if isinstance(profile, str) else profile
    first = prof.segments[0].duration
    trace = planned_load(prof)
    hold = trace[-1] if trace else 0.0
    # the model with the last level held long enough for any delay and window
    long = trace + [hold] * int(math.ceil(p.stable_window + p.scale_down_delay + 60))
    t = event_time(p, long, first_step_down(after=first), initial_ready=initial_ready,
                   pod_startup=PLANNED_POD_STARTUP, horizon=len(long))
    if t.latest is None:
        return prof
    need = t.latest + budget().total + 2 * DEFAULT_OBSERVATION_LATENCY
    extra = need - prof.total
    if extra <= 0:
        return prof
    last = prof.segments[-1]
    segs = prof.segments[:-1] + (replace(last, duration=last.duration + math.ceil(extra)),)
    return replace(prof, segments=segs,
                   description=(prof.description + f" (last segment held to "
                                f"{prof.total + math.ceil(extra):g} s: the model's first "
                                f"pod removal at {t.latest:g} s)").strip())


def after_load(w: Wait) -> float:
    """Seconds a load plus a wait counted from that load's start take."""
    return LOAD_START_S + w.deadline_s


def needs_s(*steps: float, deploys: int = 1) -> float:
    """A suite's expected seconds: its deploys, its steps (loads, waits) and teardown."""
    return deploys * DEPLOY_S + sum(steps) + TEARDOWN_S


def warm(p: KPAParams) -> Wait:
    """Hold after the deploy until the revision is older than its panic window: the
    autoscaler's panic-window average then spans the whole window (Knative divides by the
    buckets since the revision's first data while it is younger), as the panic check
    reckons it. Under ``coreweave`` that is 18 s; a burst on a younger revision panics
    before the full-window average crosses, and the check cannot tell a burst."""
    return Wait("the revision older than its panic window", "panic window full",
                p.panic_window, Budget({DECISION_TICK: TICK_INTERVAL}), "the deploy")
