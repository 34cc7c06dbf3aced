"""The Kubernetes object helpers every layer shares (:mod:`harness.objects`): conditions,
times, quantities (Kubernetes' own parser: ``2Gi`` is not 0), RFC 7386 merge patch; and
the frames and the scheduler reading quantities and node affinity through them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from harness.emulator.api.selectors import node_requirement
from harness.emulator.controllers.scheduler import affinity_matches, pod_requests
from harness.objects import (
    condition_is,
    condition_status,
    format_time,
    get_condition,
    merge_patch,
    parse_quantity,
    parse_time,
)
from harness.observe.frames import gpu_request

POD = {"status": {"conditions": [{"type": "PodScheduled", "status": "True"},
                                 {"type": "Ready", "status": "False", "reason": "Starting"}]}}


def test_conditions_are_looked_up_by_type() -> None:
    assert get_condition(POD, "Ready") == {"type": "Ready", "status": "False",
                                           "reason": "Starting"}
    assert get_condition(POD, "Active") is None and get_condition(None, "Ready") is None
    assert condition_status(POD, "PodScheduled") == "True"
    assert condition_status(POD, "Active") == "Unknown"
    assert condition_is(POD, "Ready", "False") and not condition_is(POD, "Ready")


def test_times_round_trip_through_rfc3339() -> None:
    assert format_time(1767225600.9) == "2026-01-01T00:00:00Z"
    assert parse_time("2026-01-01T00:00:00Z") == 1767225600.0
    assert parse_time("2026-01-01T00:00:00.250Z") == 1767225600.25
    assert parse_time(format_time(1767225601.0)) == 1767225601.0
    assert parse_time("") is None and parse_time("yesterday") is None
    assert parse_time(12.5) == 12.5


@pytest.mark.parametrize(("text", "value"), [
    ("2Gi", Decimal(2 * 1024**3)), ("500m", Decimal("0.5")), ("1.5", Decimal("1.5")),
    ("4", Decimal(4)), (2, Decimal(2)), ("100M", Decimal(10**8))])
def test_quantities_parse_as_kubernetes_does(text: object, value: Decimal) -> None:
    assert parse_quantity(text) == value


def test_a_quantity_that_is_not_one_is_an_error() -> None:
    with pytest.raises(ValueError):
        parse_quantity("two")


@pytest.mark.parametrize("gpus", ["2Gi", "500m", "1.5"])
def test_the_frames_read_a_gpu_request_with_any_suffix(gpus: str) -> None:
    pod = {"spec": {"containers": [{"resources": {"limits": {"nvidia.com/gpu": gpus}}}]}}
    assert gpu_request(pod) == float(parse_quantity(gpus)) > 0


def test_the_scheduler_sums_the_same_quantities() -> None:
    pod = {"spec": {"containers": [
        {"resources": {"requests": {"cpu": "500m", "memory": "2Gi"}}},
        {"resources": {"requests": {"cpu": "1.5", "memory": "512Mi"}}}]}}
    got = pod_requests(pod)
    assert got["cpu"] == Decimal(2) and got["memory"] == Decimal(2 * 1024**3 + 512 * 1024**2)


def test_merge_patch_follows_rfc_7386() -> None:
    # RFC 7386 section 3's example, and the document is not changed in place
    doc = {"title": "Goodbye!", "author": {"givenName": "John", "familyName": "Doe"},
           "tags": ["example", "sample"], "content": "This will be unchanged"}
    patch = {"title": "Hello!", "phoneNumber": "+01-123-456-7890",
             "author": {"familyName": None}, "tags": ["example"]}
    assert merge_patch(doc, patch) == {
        "title": "Hello!", "author": {"givenName": "John"}, "tags": ["example"],
        "content": "This will be unchanged", "phoneNumber": "+01-123-456-7890"}
    assert doc["author"] == {"givenName": "John", "familyName": "Doe"}
    assert merge_patch({"a": "b"}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}
    assert merge_patch({"a": "foo"}, "bar") == "bar"


NODE = {"metadata": {"name": "gpu-1", "labels": {"gpu.nvidia.com/class": "Quadro_RTX_5000",
                                                 "gpus": "2"}}}


@pytest.mark.parametrize(("expr", "matches"), [
    ({"key": "gpu.nvidia.com/class", "operator": "In", "values": ["Quadro_RTX_5000"]}, True),
    ({"key": "gpu.nvidia.com/class", "operator": "NotIn", "values": ["Quadro_RTX_5000"]},
     False),
    ({"key": "gpus", "operator": "Gt", "values": ["1"]}, True),
    ({"key": "gpus", "operator": "Lt", "values": ["2"]}, False),
    ({"key": "gpus", "operator": "Gt", "values": ["one"]}, False),
    ({"key": "gpus", "operator": "Gt", "values": ["1", "2"]}, False),
    ({"key": "zone", "operator": "DoesNotExist"}, True),
    ({"key": "zone", "operator": "Near", "values": ["x"]}, False),
])
def test_node_affinity_matches_with_the_selector_requirement(expr: dict, matches: bool) -> None:
    req = node_requirement(expr)
    assert (req is not None and req.matches(NODE["metadata"]["labels"])) is matches
    pod = {"spec": {"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [expr]}]}}}}}
    assert affinity_matches(pod, NODE) is matches
