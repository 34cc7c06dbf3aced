"""Run the reference model in virtual time: load in, one row per decider tick out.

:func:`simulate` feeds a per-second load trace through the metric pipeline, the decider
(:mod:`harness.kpa.decider`) and the KPA reconciler (:mod:`harness.kpa.reconciler`), and
lets ready pods follow the Deployment's replicas after a pod start-up delay. 24 h of
virtual time take well under a second.

The model of one virtual second ``k`` (``load[k]`` is the revision-wide concurrency, or
rps, during ``[k, k+1)``):

1. Pods whose start-up finished by ``k`` become ready (and the PA is reconciled).
2. Observation of the second that just ended, recorded in bucket ``k``: when ready pods
   are scraped (R > 0 and TBC != -1) the total ``load[k-1]`` is recorded, zeros included
   (scraped pods and activator reports add up to the total because queue-proxy subtracts
   the proxied part). Otherwise only the activator reports, and only for a second that
   had traffic: at R = 0 nothing is recorded for an idle second.
3. The activator is in the path when the SKS is in Proxy or no pod is ready (the SKS then
   falls back to the activator's endpoints). When requests reach it after an idle second
   it sends one immediate stat (concurrency 1, 1 request) into bucket ``k``; for rps
   its next report subtracts that request.
4. Any activator stat with traffic while the decider's last value is 0 pokes the decider:
   an immediate tick at ``k``. Regular ticks run at every even second (2 s), after the
   observation of that second; a poke and a regular tick at one instant are one tick.
5. The PA is reconciled when a tick changes the decider's value or flips the sign of
   EBC, when ready pods change, and at the re-enqueue times the reconciler asks for, as
   Knative's multiscaler and work queue do; while a pass changes the PA state or the SKS
   mode it runs again at the same instant (the status-update event).
6. Scale-up adds pods that become ready ``pod_startup`` seconds later; scale-down removes
   pods at once, those still starting first (as a ReplicaSet does).

Simplifications, each good to about the 1 s scrape or 2 s tick: all times are whole
seconds (a fractional start-up ends at the next second); a scrape sees the last second's
average of the revision-wide total exactly (no sampling error); the activator drops a
revision's entry after one idle second; termination and probe latencies are zero.

Start state. A revision that is not ``fresh`` has existed for longer than its stable
window at ``initial_ready`` pods: both windows are full of ``history`` (default: the
first second's load), the decider is not panicking and its last value and its
scale-down-delay window hold ``initial_ready``, and the PA has been Active (or, at 0
pods, Inactive) since long ago. A ``fresh`` revision is created at t = 0: empty windows,
decider value -1 and start-up panic if ``initial_ready > 1``, PA Activating and not
yet initialised, and the Deployment asks for ``max(initial_ready, initial-scale)`` pods.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from harness.kpa.collector import Collection
from harness.kpa.decider import Decider, initial_ebc
from harness.kpa.reconciler import DEFAULT_ACTIVATION_TIMEOUT, PAState, Reconciler, SKSMode
from harness.params import KPAParams

__all__ = ["COLUMNS", "simulate", "simulate_columns"]

COLUMNS: tuple[str, ...] = (
    "t",
    "load",
    "ready",
    "replicas",
    "stable",
    "panic",
    "decider",
    "desired",
    "panic_mode",
    "ebc",
    "pa_state",
    "sks_mode",
    "valid",
    "poke",
)
"""Columns of a simulation, one row per tick:

``t`` seconds; ``load`` the scenario's load at t; ``ready`` ready pods the tick saw;
``replicas`` Deployment replicas after the tick; ``stable``/``panic`` the window averages
S and P; ``decider`` the decider's latest value (before bounds and scale-to-zero, -1
unknown); ``desired`` the PA's desiredScale after them; ``panic_mode``; ``ebc``;
``pa_state`` (Active/Activating/Inactive); ``sks_mode`` (Serve/Proxy); ``valid`` False
when the tick had no data; ``poke`` True for a tick run by an activator poke.
"""

_MAX_SAME_INSTANT_PASSES = 4


def simulate(
    params: KPAParams,
    load: Sequence[float],
    pod_startup: float = 0.0,
    *,
    initial_ready: int = 1,
    hold_ready: bool = False,
    fresh: bool = False,
    history: float | None = None,
    until: float | None = None,
    reachable: bool = True,
    activation_timeout: float = DEFAULT_ACTIVATION_TIMEOUT,
) -> pd.DataFrame:
    """Simulate ``load`` (per-second revision-wide totals) and return one row per tick.

    ``pod_startup``: seconds from a scale-up decision to the new pods being ready.
    ``hold_ready``: ready pods stay at ``initial_ready`` whatever is decided.
    ``until``: last second simulated (default: the end of ``load``); load after the
    trace is 0. See the module docstring for the start state and the metric pipeline.
    """
    cols = simulate_columns(
        params,
        load,
        pod_startup,
        initial_ready=initial_ready,
        hold_ready=hold_ready,
        fresh=fresh,
        history=history,
        until=until,
        reachable=reachable,
        activation_timeout=activation_timeout,
    )
    return pd.DataFrame(cols, columns=list(COLUMNS))


def simulate_columns(
    params: KPAParams,
    load: Sequence[float],
    pod_startup: float = 0.0,
    *,
    initial_ready: int = 1,
    hold_ready: bool = False,
    fresh: bool = False,
    history: float | None = None,
    until: float | None = None,
    reachable: bool = True,
    activation_timeout: float = DEFAULT_ACTIVATION_TIMEOUT,
) -> dict[str, list[Any]]:
    """:func:`simulate` without pandas: a dict of column lists, keyed by :data:`COLUMNS`."""
    if initial_ready < 0:
        raise ValueError(f"initial_ready must be >= 0, got {initial_ready}")
    if pod_startup < 0:
        raise ValueError(f"pod_startup must be >= 0, got {pod_startup}")
    end = len(load) if until is None else int(math.floor(until))
    trace = [float(x) for x in load[: end + 1]]
    trace.extend([0.0] * (end + 2 - len(trace)))
    startup = math.ceil(pod_startup)
    is_rps = params.metric == "rps"

    metrics = Collection(params)
    scraped = metrics.scraped
    record = metrics.record
    ready = initial_ready
    pending: list[int] = []  # ready-at seconds of pods starting, ascending

    if fresh:
        decider = Decider(params, metrics, now=0.0, ready=ready, reachable=reachable)
        last_desired = -1
        ebc = initial_ebc(params)
        replicas = max(initial_ready, params.initial_scale)
        if not hold_ready:
            pending = [startup] * (replicas - initial_ready)
        rec = Reconciler(
            params,
            replicas=replicas,
            state=PAState.ACTIVATING,
            state_since=0.0,
            sks_mode=SKSMode.PROXY,
            proxy_since=0.0,
            initialized=False,
            reachable=reachable,
            activation_timeout=activation_timeout,
        )
        act_prev = False
    else:
        h = trace[0] if history is None else float(history)
        if ready > 0 and (scraped or h > 0):
            for k in range(1 - metrics.stable.n, 1):
                record(k, h)
        decider = Decider(params, metrics, now=0.0, ready=0, reachable=reachable)
        decider.max_panic_pods = 0
        if decider.delay_window is not None:
            decider.delay_window.record(0.0, ready)
        last_desired = ready
        tbc = params.target_burst_capacity
        if tbc > 0:
            ebc = math.floor(ready * params.total_per_pod - tbc - (h if ready > 0 else 0.0))
        else:
            ebc = int(tbc)
        proxy = ready == 0 or ebc < 0
        rec = Reconciler(
            params,
            replicas=ready,
            state=PAState.ACTIVE if ready > 0 else PAState.INACTIVE,
            state_since=-math.inf,
            sks_mode=SKSMode.PROXY if proxy else SKSMode.SERVE,
            proxy_since=-math.inf if proxy else None,
            initialized=True,
            reachable=reachable,
            activation_timeout=activation_timeout,
        )
        act_prev = proxy and ready > 0 and h > 0

    out: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    c_t, c_load, c_ready, c_repl = out["t"], out["load"], out["ready"], out["replicas"]
    c_s, c_p, c_dec, c_des = out["stable"], out["panic"], out["decider"], out["desired"]
    c_pm, c_ebc, c_pa, c_sks = out["panic_mode"], out["ebc"], out["pa_state"], out["sks_mode"]
    c_valid, c_poke = out["valid"], out["poke"]

    requeue_at = math.inf
    reconcile_due = True  # one pass at t = 0 settles the start state
    rps_first = False
    proxy_mode = SKSMode.PROXY
    scale = decider.scale

    for t in range(0, end + 1):
        # 1. pods that finished starting
        if pending and pending[0] <= t:
            while pending and pending[0] <= t:
                pending.pop(0)
                ready += 1
            reconcile_due = True
        poke = False
        # 2. observation of [t-1, t)
        if t > 0:
            x = trace[t - 1]
            if rps_first:
                x = x - 1.0 if x > 1.0 else 0.0
                rps_first = False
            if scraped and ready > 0:
                record(t, x)
            elif act_prev and x > 0:
                record(t, x)
            if act_prev and x > 0 and last_desired == 0:
                poke = True
        # 3. first request at the activator after an idle second
        cur = trace[t]
        in_path = ready == 0 or rec.sks_mode is proxy_mode
        if in_path and cur > 0 and not act_prev:
            record(t, 1.0)
            rps_first = is_rps
            if last_desired == 0:
                poke = True
        act_prev = in_path and cur > 0
        # 4. decider tick
        tick = poke or (t > 0 and not t & 1)
        if tick:
            seen = ready
            res = scale(t, ready)
            if res.valid:
                if res.desired != last_desired or (res.ebc < 0) != (ebc < 0):
                    reconcile_due = True
                last_desired = res.desired
                ebc = res.ebc
        # 5. reconcile
        if reconcile_due or t >= requeue_at:
            reconcile_due = False
            if t >= requeue_at:
                requeue_at = math.inf
            for _ in range(_MAX_SAME_INSTANT_PASSES):
                before_state, before_mode = rec.state, rec.sks_mode
                result = rec.reconcile(t, last_desired, ebc, ready)
                if result.requeue_after is not None:
                    requeue_at = min(requeue_at, t + result.requeue_after)
                # 6. pods follow replicas
                if not hold_ready:
                    have = ready + len(pending)
                    want = result.replicas
                    if want > have:
                        pending.extend([t + startup] * (want - have))
                    elif want < have:
                        drop = have - want
                        cut = min(drop, len(pending))
                        if cut:
                            del pending[len(pending) - cut :]
                        if drop > cut:
                            ready -= drop - cut
                            reconcile_due = True  # the pod informer sees them go
                if rec.state is before_state and rec.sks_mode is before_mode:
                    break
        if tick:
            c_t.append(t)
            c_load.append(cur)
            c_ready.append(seen)
            c_repl.append(rec.replicas)
            c_s.append(res.stable)
            c_p.append(res.panic)
            c_dec.append(last_desired)
            c_des.append(rec.desired_scale)
            c_pm.append(res.panic_mode)
            c_ebc.append(ebc)
            c_pa.append(rec.state.value)
            c_sks.append(rec.sks_mode.value)
            c_valid.append(res.valid)
            c_poke.append(poke)
    return out
