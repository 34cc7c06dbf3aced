"""Frame schemas and pure builders: recorded watch events -> pandas frames.

Input: a list of recorded watch events, each a mapping with ``received`` (local
``time.time()`` when the event arrived), ``type`` (``ADDED``/``MODIFIED``/``DELETED``)
and ``object`` (a Pod, PodAutoscaler, Revision or Event as the API returns it; an
optional ``kind`` key on the event overrides ``object.kind``). Every time in a frame is
epoch seconds. A stamp is the *receive* time of the first event that shows the state,
because API timestamps have one-second resolution; when the first event already shows
it and the object's own timestamp is more than :data:`PRE_EXISTING` seconds older (the
object existed before the watch began), the object's timestamp is used instead.

Frames (column tuples below are the schema; see each docstring):

* ``pods``: one row per pod, its lifecycle, placement and GPU request;
* ``ready``: the ready-replica series (a row whenever the count changes);
* ``scale``: desired/actual scale and the Active condition of each PodAutoscaler;
* ``panic``: panic-mode transitions, from the autoscaler's gauge or inferred;
* ``scheduling``: the scheduler's events about pods (FailedScheduling with message).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.objects import (
    GPU_RESOURCE,
    REVISION_LABEL,
    get_condition,
    parse_quantity,
    parse_time,
)

if TYPE_CHECKING:
    from harness.params import KPAParams

PRE_EXISTING = 2.0
"""Seconds an object timestamp must precede the first receive to count as pre-existing."""

SCHEDULING_REASONS = frozenset({"FailedScheduling", "Scheduled", "Preempted", "NotTriggerScaleUp"})

POD_COLUMNS: tuple[str, ...] = (
    "pod",
    "revision",
    "node",
    "phase",
    "created",
    "scheduled",
    "initialized",
    "started",
    "ready",
    "terminating",
    "deleted",
    "gpu",
    "affinity",
    "node_selector",
    "pending_reason",
)
"""Per-pod lifecycle, one row per pod (ordered by ``created``):

``pod`` name; ``revision`` its ``serving.knative.dev/revision`` label ("" if none);
``node`` spec.nodeName last seen ("" while unscheduled); ``phase`` last status.phase
(``Deleted`` once gone); ``created``, ``scheduled`` (PodScheduled=True),
``initialized`` (Initialized=True), ``started`` (every container running), ``ready``
(first Ready=True), ``terminating`` (deletionTimestamp first seen), ``deleted``
(DELETED received): epoch seconds or NaN; ``gpu`` the ``nvidia.com/gpu`` request summed
over containers (limits when no request; 0 if none); ``affinity`` required node-affinity
terms as text (``key In [a, b]``; ``&`` within a term, `` | `` between terms);
``node_selector`` as ``k=v`` pairs; ``pending_reason`` the last PodScheduled=False
message ("" if none).
"""

READY_COLUMNS: tuple[str, ...] = ("time", "ready", "pods")
"""Ready-replica series: ``time``; ``ready`` pods Ready and not terminating; ``pods``
pods that exist and are not terminating. One row at the first event, then one per change.
"""

SCALE_COLUMNS: tuple[str, ...] = ("time", "pa", "desired", "actual", "active", "reason")
"""PodAutoscaler series: ``time``; ``pa`` its name; ``desired`` status.desiredScale
(NaN when absent, -1 while unknown); ``actual`` status.actualScale (NaN when absent);
``active`` the Active condition's status (``True``/``False``/``Unknown``/"");
``reason`` its reason (``Queued``, ``NoTraffic``...). One row per change of a PA.
"""

PANIC_COLUMNS: tuple[str, ...] = ("time", "panic", "inferred", "source")
"""Panic-mode transitions: ``time``; ``panic`` True from this time on, False after;
``inferred`` False when read from the autoscaler's ``panic_mode`` gauge, True when
inferred from the trajectory (:func:`infer_panic`); ``source`` ``metrics`` or
``trajectory``.
"""

SCHEDULING_COLUMNS: tuple[str, ...] = ("time", "pod", "reason", "message", "count", "type")
"""Scheduler events about pods: ``time`` (receive, or lastTimestamp when pre-existing);
``pod``; ``reason`` (``FailedScheduling``, ``Scheduled``, ``Preempted``...);
``message`` the scheduler's text; ``count``; ``type`` ``Normal``/``Warning``.
"""


@dataclass(frozen=True)
class Frames:
    """Every frame of one recorded timeline; ``start``/``end`` bound the recording."""

    pods: pd.DataFrame
    ready: pd.DataFrame
    scale: pd.DataFrame
    panic: pd.DataFrame
    scheduling: pd.DataFrame
    start: float = math.nan
    end: float = math.nan
    extra: dict[str, Any] = field(default_factory=dict)

    def frames(self) -> dict[str, pd.DataFrame]:
        """Name -> frame, for writing out (``pods``, ``ready``, ``scale``, ...)."""
        return {
            "pods": self.pods,
            "ready": self.ready,
            "scale": self.scale,
            "panic": self.panic,
            "scheduling": self.scheduling,
        }


def empty(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: [] for c in columns})


# --------------------------------------------------------------------------- helpers


def kind_of(event: Mapping[str, Any]) -> str:
    """The kind of an event's object, from ``kind`` or the object's shape."""
    obj = event.get("object") or {}
    kind = event.get("kind") or obj.get("kind")
    if kind:
        return str(kind)
    if "involvedObject" in obj:
        return "Event"
    spec = obj.get("spec") or {}
    if "containers" in spec:
        return "Pod"
    if "scaleTargetRef" in spec or "desiredScale" in (obj.get("status") or {}):
        return "PodAutoscaler"
    return ""


def _sorted(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(events, key=lambda e: float(e["received"]))


def _cond_true(obj: Mapping[str, Any], ctype: str) -> tuple[bool, float | None]:
    cond = get_condition(obj, ctype)
    if cond is None or str(cond.get("status")) != "True":
        return False, None
    return True, parse_time(cond.get("lastTransitionTime"))


def _stamp(received: float, first_event: bool, own: float | None) -> float:
    if first_event and own is not None and own < received - PRE_EXISTING:
        return own
    return received


def gpu_request(pod: Mapping[str, Any]) -> float:
    """``nvidia.com/gpu`` requested by a pod's containers (limits stand in for requests)."""
    total = 0.0
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        raw = (res.get("requests") or {}).get(GPU_RESOURCE)
        if raw is None:
            raw = (res.get("limits") or {}).get(GPU_RESOURCE)
        if raw is not None:
            total += float(parse_quantity(raw))
    return total


def affinity_terms(pod: Mapping[str, Any]) -> list[list[dict[str, Any]]]:
    """Required node-affinity terms: a list (ORed) of lists (ANDed) of expressions."""
    aff = ((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}
    req = aff.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    out = []
    for term in req.get("nodeSelectorTerms") or []:
        out.append([dict(e) for e in term.get("matchExpressions") or []])
    return out


def affinity_text(pod: Mapping[str, Any]) -> str:
    terms = []
    for term in affinity_terms(pod):
        exprs = [
            f"{e.get('key')} {e.get('operator')} [{', '.join(map(str, e.get('values') or []))}]"
            for e in term
        ]
        terms.append(" & ".join(exprs))
    return " | ".join(terms)


# --------------------------------------------------------------------------- pods


def _pod_events(events: Iterable[Mapping[str, Any]], revision: str | None) -> list[Any]:
    out = []
    for e in _sorted(events):
        if kind_of(e) != "Pod":
            continue
        obj = e["object"]
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if revision is not None and labels.get(REVISION_LABEL) != revision:
            continue
        out.append(e)
    return out


def pod_frame(events: Iterable[Mapping[str, Any]], revision: str | None = None) -> pd.DataFrame:
    """Per-pod lifecycle (:data:`POD_COLUMNS`), optionally for one revision's pods."""
    rows: dict[str, dict[str, Any]] = {}
    for e in _pod_events(events, revision):
        obj, rec, etype = e["object"], float(e["received"]), e.get("type")
        meta = obj.get("metadata") or {}
        name = str(meta.get("name"))
        first = name not in rows
        if first:
            rows[name] = {c: math.nan for c in POD_COLUMNS}
            rows[name].update(
                pod=name,
                revision=str((meta.get("labels") or {}).get(REVISION_LABEL, "")),
                node="",
                phase="",
                pending_reason="",
                created=_stamp(rec, True, parse_time(meta.get("creationTimestamp"))),
            )
        row = rows[name]
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        row["gpu"] = gpu_request(obj)
        row["affinity"] = affinity_text(obj)
        row["node_selector"] = ",".join(
            f"{k}={v}" for k, v in sorted((spec.get("nodeSelector") or {}).items())
        )
        if spec.get("nodeName"):
            row["node"] = str(spec["nodeName"])
        if status.get("phase"):
            row["phase"] = str(status["phase"])
        sched = get_condition(obj, "PodScheduled")
        if sched is not None and str(sched.get("status")) == "False":
            row["pending_reason"] = str(sched.get("message") or sched.get("reason") or "")
        for col, ctype in (("scheduled", "PodScheduled"), ("initialized", "Initialized"),
                           ("ready", "Ready")):
            ok, own = _cond_true(obj, ctype)
            if ok and math.isnan(row[col]):
                row[col] = _stamp(rec, first, own)
        if math.isnan(row["scheduled"]) and spec.get("nodeName") and sched is None:
            row["scheduled"] = rec
        statuses = status.get("containerStatuses") or []
        if statuses and math.isnan(row["started"]):
            running = [((s.get("state") or {}).get("running")) for s in statuses]
            if all(r is not None for r in running):
                own = max((parse_time(r.get("startedAt")) or 0.0) for r in running) or None
                row["started"] = _stamp(rec, first, own)
        if meta.get("deletionTimestamp") and math.isnan(row["terminating"]):
            row["terminating"] = rec
        if etype == "DELETED":
            row["deleted"] = rec
            row["phase"] = "Deleted"
            if math.isnan(row["terminating"]):
                row["terminating"] = rec
    if not rows:
        return empty(POD_COLUMNS)
    df = pd.DataFrame(list(rows.values()), columns=list(POD_COLUMNS))
    df["gpu"] = df["gpu"].fillna(0.0).astype(float)
    for col in ("affinity", "node_selector", "phase"):
        df[col] = df[col].fillna("").astype(str)
    return df.sort_values("created", kind="stable").reset_index(drop=True)


def _is_ready(obj: Mapping[str, Any], etype: str | None) -> tuple[bool, bool]:
    """(ready, exists-and-not-terminating) for one pod event."""
    if etype == "DELETED" or (obj.get("metadata") or {}).get("deletionTimestamp"):
        return False, False
    phase = (obj.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        return False, False
    ok, _ = _cond_true(obj, "Ready")
    return ok, True


def ready_frame(events: Iterable[Mapping[str, Any]], revision: str | None = None) -> pd.DataFrame:
    """The ready-replica series (:data:`READY_COLUMNS`)."""
    evs = _pod_events(events, revision)
    if not evs:
        return empty(READY_COLUMNS)
    state: dict[str, tuple[bool, bool]] = {}
    rows: list[tuple[float, int, int]] = []
    i = 0
    while i < len(evs):
        t = float(evs[i]["received"])
        # events received at the same instant are applied together
        while i < len(evs) and float(evs[i]["received"]) == t:
            obj = evs[i]["object"]
            state[str((obj.get("metadata") or {}).get("name"))] = _is_ready(obj, evs[i].get("type"))
            i += 1
        ready = sum(1 for r, _ in state.values() if r)
        pods = sum(1 for _, p in state.values() if p)
        if not rows or (rows[-1][1], rows[-1][2]) != (ready, pods):
            rows.append((t, ready, pods))
    return pd.DataFrame(rows, columns=list(READY_COLUMNS))


# --------------------------------------------------------------------------- PodAutoscalers


def scale_frame(events: Iterable[Mapping[str, Any]], pa: str | None = None) -> pd.DataFrame:
    """Desired/actual scale of each PodAutoscaler (:data:`SCALE_COLUMNS`)."""
    last: dict[str, tuple[Any, ...]] = {}
    rows = []
    for e in _sorted(events):
        if kind_of(e) != "PodAutoscaler":
            continue
        obj = e["object"]
        name = str((obj.get("metadata") or {}).get("name"))
        if pa is not None and name != pa:
            continue
        status = obj.get("status") or {}
        desired = status.get("desiredScale")
        actual = status.get("actualScale")
        cond = get_condition(obj, "Active") or {}
        key = (
            math.nan if desired is None else float(desired),
            math.nan if actual is None else float(actual),
            str(cond.get("status", "")),
            str(cond.get("reason", "")),
        )
        if e.get("type") == "DELETED":
            continue
        prev = last.get(name)
        if prev is not None and _same(prev, key):
            continue
        last[name] = key
        rows.append((float(e["received"]), name, *key))
    if not rows:
        return empty(SCALE_COLUMNS)
    return pd.DataFrame(rows, columns=list(SCALE_COLUMNS))


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    for x, y in zip(a, b, strict=True):
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        if x != y:
            return False
    return True


# --------------------------------------------------------------------------- panic


def panic_from_gauge(samples: Iterable[tuple[float, float]] | pd.DataFrame) -> pd.DataFrame:
    """Panic transitions from scraped ``panic_mode`` gauge samples ``(time, value)``."""
    if isinstance(samples, pd.DataFrame):
        pairs = list(zip(samples["time"], samples["value"], strict=True))
    else:
        pairs = list(samples)
    rows: list[tuple[float, bool, bool, str]] = []
    for t, v in sorted(pairs):
        p = float(v) >= 0.5
        if not rows or rows[-1][1] != p:
            rows.append((float(t), p, False, "metrics"))
    return pd.DataFrame(rows, columns=list(PANIC_COLUMNS)) if rows else empty(PANIC_COLUMNS)


def infer_panic(
    scale: pd.DataFrame, ready: pd.DataFrame, params: KPAParams, end: float | None = None
) -> pd.DataFrame:
    """Panic periods inferred from the trajectory, marked ``inferred=True``.

    The state is panic-level while the desired scale is at least the panic threshold
    times ``max(1, ready)`` (and above min-scale): Knative enters panic when the
    panic-window demand reaches that ratio (``knative-kpa.md`` §6.6), and the frames
    only show the desired scale when it changes, so the whole interval counts. Panic
    lasts until one stable window after the panic-level state ends, as the decider's
    does.
    """
    from harness.observe.series import step_value

    valid = scale[scale["desired"].notna() & (scale["desired"] >= 0)]
    if valid.empty:
        return empty(PANIC_COLUMNS)
    first = float(valid["time"].iloc[0])
    times = sorted({float(t) for t in valid["time"]}
                   | {float(t) for t in ready["time"] if float(t) >= first})
    rows: list[tuple[float, bool, bool, str]] = []
    until = -math.inf
    panicking = False
    for i, t in enumerate(times):
        if panicking and t > until:
            rows.append((until, False, True, "trajectory"))
            panicking = False
        desired = float(step_value(valid, t, "desired"))
        r1 = max(1.0, float(step_value(ready, t, "ready", 0)))
        if desired >= params.panic_threshold * r1 and desired > params.min_scale:
            nxt = times[i + 1] if i + 1 < len(times) else (end if end is not None else t)
            until = max(t, nxt) + params.stable_window
            if not panicking:
                rows.append((t, True, True, "trajectory"))
                panicking = True
    if panicking and end is not None and until <= end:
        rows.append((until, False, True, "trajectory"))
    return pd.DataFrame(rows, columns=list(PANIC_COLUMNS)) if rows else empty(PANIC_COLUMNS)


# --------------------------------------------------------------------------- events


def scheduling_frame(events: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The scheduler's events about pods (:data:`SCHEDULING_COLUMNS`)."""
    rows = []
    seen: dict[str, int] = {}
    for e in _sorted(events):
        if kind_of(e) != "Event" or e.get("type") == "DELETED":
            continue
        obj = e["object"]
        reason = str(obj.get("reason", ""))
        inv = obj.get("involvedObject") or {}
        if reason not in SCHEDULING_REASONS or inv.get("kind", "Pod") != "Pod":
            continue
        uid = str((obj.get("metadata") or {}).get("name", id(obj)))
        count = int(obj.get("count") or 1)
        if seen.get(uid) == count:
            continue
        first = uid not in seen
        seen[uid] = count
        own = parse_time(obj.get("lastTimestamp") or obj.get("eventTime"))
        t = _stamp(float(e["received"]), first, own)
        rows.append(
            (t, str(inv.get("name", "")), reason, str(obj.get("message", "")), count,
             str(obj.get("type", "")))
        )
    if not rows:
        return empty(SCHEDULING_COLUMNS)
    return pd.DataFrame(rows, columns=list(SCHEDULING_COLUMNS))


# --------------------------------------------------------------------------- all together


def build_frames(
    events: Sequence[Mapping[str, Any]],
    *,
    revision: str | None = None,
    pa: str | None = None,
    panic_samples: Iterable[tuple[float, float]] | pd.DataFrame | None = None,
    params: KPAParams | None = None,
) -> Frames:
    """Every frame from one recording.

    ``revision``/``pa`` restrict pods and PodAutoscalers to one revision. Panic comes
    from ``panic_samples`` (the autoscaler's gauge) when given; otherwise it is inferred
    from the trajectory when ``params`` are given, else the panic frame is empty.
    """
    times = [float(e["received"]) for e in events]
    start = min(times) if times else math.nan
    end = max(times) if times else math.nan
    pods = pod_frame(events, revision)
    ready = ready_frame(events, revision)
    scale = scale_frame(events, pa)
    if panic_samples is not None:
        panic = panic_from_gauge(panic_samples)
    elif params is not None:
        panic = infer_panic(scale, ready, params, end=end)
    else:
        panic = empty(PANIC_COLUMNS)
    return Frames(
        pods=pods,
        ready=ready,
        scale=scale,
        panic=panic,
        scheduling=scheduling_frame(events),
        start=start,
        end=end,
    )
