"""The cold start's breakdown read from recorded timelines: one recorded on real Knative
Serving 1.21 + KServe 0.20 (``tests/fixtures/recorded/upstream-cold-start.json.gz``, a
``harness conformance --cluster upstream`` run's events trimmed to pods and
PodAutoscalers), and the ordering rules of :func:`harness.checks.cold_start.phase_rows`."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from harness.checks import check_cold_start
from harness.checks.cold_start import PHASES, phase_rows
from harness.checks.verdict import PASS
from harness.observe.frames import build_frames
from harness.profiles import load_profile

RECORDED = Path(__file__).parent / "fixtures" / "recorded" / "upstream-cold-start.json.gz"
REVISION = "cpu-small-predictor-00001"


def recorded() -> tuple[list[dict], pd.DataFrame]:
    doc = json.loads(gzip.decompress(RECORDED.read_bytes()))
    return doc["events"], pd.DataFrame(doc["records"])


def test_upstream_cold_start_split_into_every_part():
    events, records = recorded()
    frames = build_frames(events, revision=REVISION, pa=REVISION)
    v = check_cold_start(frames, None, records, profile=load_profile("coreweave"))
    assert v.status == PASS, v.why
    n = v.numbers
    # the recorded receive times (seconds after the request was sent at ...398.0445):
    # PA desiredScale 0 -> 1 at +0.151, pod ADDED +0.471, PodScheduled +0.520,
    # Initialized and all three containers (kserve-container, queue-proxy, KServe's
    # agent) running +1.238, Ready +2.316, response read +2.327
    assert n["autoscaler reaction"] == pytest.approx(0.151, abs=0.002)
    assert n["pod creation"] == pytest.approx(0.320, abs=0.002)
    assert n["scheduling"] == pytest.approx(0.049, abs=0.002)
    assert n["storage initializer"] == pytest.approx(0.718, abs=0.002)
    assert n["container start"] == pytest.approx(0.0, abs=0.002)
    assert n["queue-proxy and model ready"] == pytest.approx(1.078, abs=0.002)
    assert n["first response"] == pytest.approx(0.011, abs=0.002)
    assert sum(n[name] for name, _, _ in PHASES) == pytest.approx(n["total"])
    assert n["total"] == pytest.approx(2.327, abs=0.001)
    assert "autoscaler reaction 0.15 s, pod creation 0.32 s" in v.observed


def test_without_the_podautoscaler_the_reaction_merges_into_pod_creation():
    events, records = recorded()
    pods_only = [e for e in events if e["kind"] == "Pod"]
    v = check_cold_start(build_frames(pods_only, revision=REVISION), None, records,
                         profile=load_profile("coreweave"))
    assert math.isnan(v.numbers["autoscaler reaction"])
    assert v.numbers["pod creation"] == pytest.approx(0.471, abs=0.002)
    assert "autoscaler reaction" not in v.observed


def test_ready_seen_after_the_response_merges_into_the_first_response():
    # the activator forwarded the request before the kubelet's Ready (seen on upstream:
    # the pod that answered became Ready 11 s after it started)
    rows = phase_rows({"request": 0.0, "desired": 0.2, "created": 0.5, "scheduled": 0.6,
                       "initialized": 0.7, "started": 1.0, "ready": 2.5, "response": 2.2})
    by = {r["phase"]: r["seconds"] for r in rows}
    assert math.isnan(by["queue-proxy and model ready"])
    assert by["first response"] == pytest.approx(1.2)
    assert sum(s for s in by.values() if not math.isnan(s)) == pytest.approx(2.2)


def test_the_verdict_says_when_ready_came_after_the_response():
    events, records = recorded()
    late = []
    for e in events:   # the serving pod's Ready reaches the watch 3 s later than it did
        if e["kind"] == "Pod" and e["object"]["metadata"]["name"].endswith("rpn5b") and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in e["object"]["status"].get("conditions", [])):
            e = {**e, "received": e["received"] + 3.0}
        late.append(e)
    frames = build_frames(late, revision=REVISION, pa=REVISION)
    v = check_cold_start(frames, None, records, profile=load_profile("coreweave"))
    assert v.status == PASS
    assert math.isnan(v.numbers["queue-proxy and model ready"])
    assert v.numbers["first response"] == pytest.approx(1.089, abs=0.002)
    assert "not Ready yet when the response came" in v.observed
    fine = check_cold_start(build_frames(events, revision=REVISION, pa=REVISION), None,
                            records, profile=load_profile("coreweave"))
    assert "not Ready yet" not in fine.observed


def test_a_missing_middle_boundary_leaves_the_sum_whole():
    rows = phase_rows({"request": 0.0, "desired": 0.2, "created": 0.5, "scheduled": 0.6,
                       "initialized": math.nan, "started": 1.0, "ready": 1.5,
                       "response": 1.6})
    by = {r["phase"]: r["seconds"] for r in rows}
    assert math.isnan(by["storage initializer"])
    assert by["container start"] == pytest.approx(0.4)
    assert sum(s for s in by.values() if not math.isnan(s)) == pytest.approx(1.6)
