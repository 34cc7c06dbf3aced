"""Waiting for an object to reach a state, with a timeout and an error that says why.

:func:`wait_for` polls one object (GET with retries, backing off from 0.2 s to 1 s) until
a predicate holds; :func:`wait_condition` waits for a status condition
(``Ready=True``); :func:`wait_isvc_ready` is the InferenceService case. A timeout raises
:class:`~harness.kube.client.WaitTimeout` naming the object, what was awaited and the last
state seen (the condition's reason and message), so a failing suite says more than "timed
out".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from harness.kube.apply import get
from harness.kube.client import Kube, WaitTimeout
from harness.kube.resources import INFERENCE_SERVICES, Resource, known
from harness.objects import condition_is, get_condition


def describe_condition(obj: Mapping[str, Any] | None, ctype: str) -> str:
    if obj is None:
        return "the object does not exist"
    cond = get_condition(obj, ctype)
    if cond is None:
        return f"no {ctype} condition yet"
    parts = [f"{ctype}={cond.get('status')}"]
    if cond.get("reason"):
        parts.append(f"reason {cond['reason']}")
    if cond.get("message"):
        parts.append(f"message {cond['message']!r}")
    return ", ".join(parts)


def wait_for(kube: Kube, resource: Resource | str, name: str, namespace: str | None,
             predicate: Callable[[dict[str, Any] | None], bool], *, timeout: float,
             what: str = "the awaited state",
             explain: Callable[[dict[str, Any] | None], str] | None = None,
             interval: float = 0.2, max_interval: float = 1.0) -> dict[str, Any] | None:
    """Poll until ``predicate(obj)`` (obj None when absent) holds; return the object."""
    res = known(resource)
    deadline = time.monotonic() + timeout
    while True:
        obj = get(kube, res, name, namespace)
        if predicate(obj):
            return obj
        if time.monotonic() >= deadline:
            seen = explain(obj) if explain else ("absent" if obj is None else "present")
            where = f"{namespace}/{name}" if namespace else name
            raise WaitTimeout(f"{res.kind} {where}: {what} not reached within {timeout:g} s; "
                              f"last seen: {seen}")
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(max_interval, interval * 1.5)


def wait_condition(kube: Kube, resource: Resource | str, name: str, namespace: str | None,
                   ctype: str = "Ready", status: str = "True", *, timeout: float = 300.0
                   ) -> dict[str, Any]:
    """Wait for condition ``ctype`` to have ``status``; return the object."""
    obj = wait_for(kube, resource, name, namespace,
                   lambda o: condition_is(o, ctype, status), timeout=timeout,
                   what=f"{ctype}={status}", explain=lambda o: describe_condition(o, ctype))
    assert obj is not None
    return obj


def describe_isvc(obj: Mapping[str, Any] | None) -> str:
    """Ready's state, and why KServe says it is not: ``PredictorReady``'s message (a
    Knative Service the webhook refused) and ``modelStatus.lastFailureInfo`` (no runtime)."""
    seen = describe_condition(obj, "Ready")
    pred = get_condition(obj, "PredictorReady")
    if pred is not None and pred.get("status") != "True" and pred.get("message"):
        seen += f"; PredictorReady message {pred['message']!r}"
    failure = (((obj or {}).get("status") or {}).get("modelStatus") or {}).get(
        "lastFailureInfo") or {}
    if failure.get("reason"):
        seen += f"; model: {failure['reason']}: {failure.get('message', '')}"
    return seen


def wait_isvc_ready(kube: Kube, name: str, namespace: str, *, timeout: float = 300.0
                    ) -> dict[str, Any]:
    """Wait for an InferenceService to be Ready; return it (``status.url`` etc.)."""
    obj = wait_for(kube, INFERENCE_SERVICES, name, namespace,
                   lambda o: condition_is(o, "Ready", "True"), timeout=timeout,
                   what="Ready=True", explain=describe_isvc)
    assert obj is not None
    return obj
