"""Frames built from hand-written recorded watch events (realistic Pod, PodAutoscaler and
Event objects as the Kubernetes API returns them)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd
import pytest

from harness.observe import (
    PANIC_COLUMNS,
    POD_COLUMNS,
    READY_COLUMNS,
    SCALE_COLUMNS,
    SCHEDULING_COLUMNS,
    build_frames,
    infer_panic,
    panic_from_gauge,
)
from harness.observe.load import offered_load
from harness.observe.series import periods, step_value
from harness.resolve import resolve

T = 1_800_000_000.0
REV = "sklearn-iris-predictor-00001"


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cond(ctype: str, status: str, at: float, reason: str = "", message: str = "") -> dict:
    c = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": iso(at)}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def pod(name: str, created: float, *, node: str = "", conditions=(), phase: str = "Pending",
        running: float | None = None, deleting: float | None = None, gpu: str | None = "1"):
    limits = {"cpu": "3", "memory": "16Gi"}
    if gpu is not None:
        limits["nvidia.com/gpu"] = gpu
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "hx-run1-panic",
            "uid": f"uid-{name}",
            "creationTimestamp": iso(created),
            "labels": {
                "serving.knative.dev/revision": REV,
                "component": "predictor",
                "serving.kserve.io/inferenceservice": "sklearn-iris",
            },
        },
        "spec": {
            "containers": [
                {"name": "kserve-container", "image": "modelserver:dev",
                 "resources": {"requests": {"cpu": "1", "memory": "6Gi"}, "limits": limits}},
                {"name": "queue-proxy", "image": "queue:dev",
                 "resources": {"requests": {"cpu": "25m"}}},
            ],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "gpu.nvidia.com/class", "operator": "In",
                     "values": ["Quadro_RTX_5000"]}]}]}}},
            "schedulerName": "default-scheduler",
        },
        "status": {"phase": phase, "conditions": list(conditions)},
    }
    if node:
        obj["spec"]["nodeName"] = node
    if running is not None:
        obj["status"]["containerStatuses"] = [
            {"name": n, "ready": False, "restartCount": 0,
             "state": {"running": {"startedAt": iso(running)}}}
            for n in ("kserve-container", "queue-proxy")
        ]
    if deleting is not None:
        obj["metadata"]["deletionTimestamp"] = iso(deleting + 30)
        obj["metadata"]["deletionGracePeriodSeconds"] = 30
    return obj


def pa(desired: int | None, actual: int | None, active: str, reason: str = "") -> dict:
    status: dict = {"conditions": [cond("Active", active, T, reason)],
                    "serviceName": REV, "metricsServiceName": f"{REV}-private"}
    if desired is not None:
        status["desiredScale"] = desired
    if actual is not None:
        status["actualScale"] = actual
    return {"apiVersion": "autoscaling.internal.knative.dev/v1alpha1", "kind": "PodAutoscaler",
            "metadata": {"name": REV, "namespace": "hx-run1-panic"},
            "spec": {"containerConcurrency": 1, "protocolType": "http1",
                     "reachability": "Reachable",
                     "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": f"{REV}-deployment"}},
            "status": status}


def k8s_event(pod_name: str, count: int, at: float, reason: str = "FailedScheduling") -> dict:
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{pod_name}.17a2b3c4d5e6f7", "namespace": "hx-run1-panic"},
            "involvedObject": {"kind": "Pod", "name": pod_name, "namespace": "hx-run1-panic"},
            "reason": reason, "type": "Warning", "count": count,
            "message": "0/3 nodes are available: 1 node(s) didn't match Pod's node "
                       "affinity/selector, 2 Insufficient nvidia.com/gpu.",
            "firstTimestamp": iso(at), "lastTimestamp": iso(at), "source": {
                "component": "default-scheduler"}}


def ev(received: float, etype: str, obj: dict) -> dict:
    return {"received": T + received, "type": etype, "object": obj}


A, B, C = "m-a", "m-b", "m-c"
ALL_TRUE = [cond("Initialized", "True", T - 58), cond("Ready", "True", T - 40),
            cond("ContainersReady", "True", T - 40), cond("PodScheduled", "True", T - 59)]
EVENTS = [
    # B existed 60 s before the recording began: its own timestamps are used
    ev(0.0, "ADDED", pod(B, T - 60, node="gpu-r1", conditions=ALL_TRUE, phase="Running",
                         running=T - 58)),
    ev(0.0, "ADDED", pod(A, T)),
    ev(0.3, "MODIFIED", pod(A, T, node="gpu-r2", conditions=[cond("PodScheduled", "True", T)])),
    ev(1.5, "MODIFIED", pod(A, T, node="gpu-r2", conditions=[
        cond("PodScheduled", "True", T), cond("Initialized", "True", T + 1)])),
    ev(2.0, "MODIFIED", pod(A, T, node="gpu-r2", running=T + 2, conditions=[
        cond("PodScheduled", "True", T), cond("Initialized", "True", T + 1),
        cond("Ready", "False", T, "ContainersNotReady")])),
    ev(4.2, "MODIFIED", pod(A, T, node="gpu-r2", running=T + 2, phase="Running", conditions=[
        cond("PodScheduled", "True", T), cond("Initialized", "True", T + 1),
        cond("Ready", "True", T + 4)])),
    ev(20.0, "ADDED", pod(C, T + 20, conditions=[cond(
        "PodScheduled", "False", T + 20, "Unschedulable",
        "0/3 nodes are available: 2 Insufficient nvidia.com/gpu.")])),
    ev(20.5, "ADDED", k8s_event(C, 1, T + 20)),
    ev(30.5, "MODIFIED", k8s_event(C, 2, T + 30)),
    ev(50.0, "MODIFIED", pod(A, T, node="gpu-r2", running=T + 2, phase="Running",
                             deleting=T + 50, conditions=[cond("Ready", "True", T + 4)])),
    ev(52.0, "DELETED", pod(A, T, node="gpu-r2", running=T + 2, phase="Running",
                            deleting=T + 50, conditions=[cond("Ready", "False", T + 51)])),
    ev(0.1, "ADDED", pa(1, 1, "True")),
    ev(10.0, "MODIFIED", pa(5, 2, "True")),
    ev(12.0, "MODIFIED", pa(5, 2, "True")),  # a resync: no new row
    ev(21.0, "MODIFIED", pa(5, 3, "True")),
    ev(60.0, "MODIFIED", pa(0, 1, "False", "NoTraffic")),
    ev(61.0, "MODIFIED", pa(None, None, "False", "NoTraffic")),
]


@pytest.fixture(scope="module")
def frames():
    return build_frames(EVENTS, params=resolve(profile="fast").params)


def test_every_frame_has_its_documented_columns(frames):
    assert tuple(frames.pods.columns) == POD_COLUMNS
    assert tuple(frames.ready.columns) == READY_COLUMNS
    assert tuple(frames.scale.columns) == SCALE_COLUMNS
    assert tuple(frames.panic.columns) == PANIC_COLUMNS
    assert tuple(frames.scheduling.columns) == SCHEDULING_COLUMNS
    assert frames.start == T and frames.end == T + 61


def test_pod_lifecycle_uses_receive_times(frames):
    a = frames.pods.set_index("pod").loc[A]
    assert (a["created"], a["scheduled"], a["initialized"], a["started"], a["ready"]) == (
        T, T + 0.3, T + 1.5, T + 2.0, T + 4.2)
    assert (a["terminating"], a["deleted"], a["phase"]) == (T + 50, T + 52, "Deleted")
    assert a["node"] == "gpu-r2" and a["revision"] == REV


def test_pod_that_existed_before_the_watch_keeps_its_own_timestamps(frames):
    b = frames.pods.set_index("pod").loc[B]
    assert (b["created"], b["scheduled"], b["initialized"], b["ready"]) == (
        T - 60, T - 59, T - 58, T - 40)
    assert math.isnan(b["terminating"])


def test_gpu_request_and_node_affinity_are_recorded(frames):
    a = frames.pods.set_index("pod").loc[A]
    assert a["gpu"] == 1.0
    assert a["affinity"] == "gpu.nvidia.com/class In [Quadro_RTX_5000]"


def test_pending_pod_keeps_the_schedulers_reason(frames):
    c = frames.pods.set_index("pod").loc[C]
    assert c["node"] == "" and math.isnan(c["scheduled"])
    assert "Insufficient nvidia.com/gpu" in c["pending_reason"]


def test_ready_series_counts_ready_pods_and_drops_terminating_ones(frames):
    rows = [tuple(r) for r in frames.ready.itertuples(index=False)]
    assert rows == [(T, 1, 2), (T + 4.2, 2, 2), (T + 20, 2, 3), (T + 50, 1, 2)]
    assert step_value(frames.ready, T + 49.9, "ready") == 2


def test_scale_series_has_one_row_per_change(frames):
    s = frames.scale
    assert list(s["desired"].iloc[:4]) == [1, 5, 5, 0]
    assert list(s["actual"].iloc[:4]) == [1, 2, 3, 1]
    assert list(s["reason"].iloc[:4]) == ["", "", "", "NoTraffic"]
    assert math.isnan(s["desired"].iloc[4])
    assert len(s) == 5


def test_scheduling_frame_keeps_failed_scheduling_with_message(frames):
    sch = frames.scheduling
    assert list(sch["count"]) == [1, 2]
    assert (sch["pod"] == C).all() and (sch["reason"] == "FailedScheduling").all()
    assert "Insufficient nvidia.com/gpu" in sch["message"].iloc[0]


def test_panic_is_inferred_from_the_trajectory_when_no_metrics(frames):
    p = frames.panic
    assert p["inferred"].all()
    # desired 5 with 2 ready from t=10 is over the 200 % threshold until desired falls
    # to 0 at t=60; panic would last a 6 s stable window more, past the recording's end
    assert periods(p, frames.end) == [(T + 10, T + 61)]
    short = infer_panic(frames.scale, frames.ready, resolve(profile="fast").params, end=T + 90)
    assert periods(short, T + 90) == [(T + 10, T + 66)]


def test_panic_from_the_autoscaler_gauge_is_not_inferred():
    g = panic_from_gauge([(T, 0), (T + 10, 1), (T + 11, 1), (T + 30, 0)])
    assert list(g["panic"]) == [False, True, False]
    assert not g["inferred"].any() and (g["source"] == "metrics").all()
    f = build_frames(EVENTS, panic_samples=pd.DataFrame({"time": [T + 5], "value": [1.0]}))
    assert f.panic["panic"].tolist() == [True]


def test_revision_filter_and_empty_input():
    f = build_frames(EVENTS, revision="other-00001")
    assert f.pods.empty and f.ready.empty and tuple(f.pods.columns) == POD_COLUMNS
    f0 = build_frames([])
    assert f0.scale.empty and math.isnan(f0.start)


def test_offered_load_is_in_flight_time_per_second():
    rec = pd.DataFrame({"start": [T + 0.5, T + 1.0, T + 1.0], "latency_s": [1.0, 0.5, math.nan],
                        "status": [200, 200, 0], "error": ["", "", "not sent: full"]})
    load = offered_load(rec, T, T + 3)
    assert list(load["concurrency"]) == pytest.approx([0.5, 1.0, 0.0])
    assert list(load["rps"]) == [1, 1, 0]
