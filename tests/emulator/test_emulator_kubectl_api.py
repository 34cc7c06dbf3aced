"""The pieces of the API that kubectl reads, without kubectl: Table cells as
kube-apiserver's printers compute them (ages, a pod's READY/STATUS/RESTARTS, CRD
JSONPath columns), the OpenAPI documents (the PATCH operation with ``fieldValidation``
that makes kubectl validate on the server; no strategic merge for custom resources),
unknown-field detection, protobuf bodies, and log selection (tail, since, timestamps)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from harness.emulator.api import printers, protobuf
from harness.emulator.api.fieldvalidation import check, check_apply, unknown_fields
from harness.emulator.api.jsonpath import find
from harness.emulator.api.openapi import OpenAPI, kind_schema
from harness.emulator.api.podlogs import LogQuery, capture, parse_line, read_lines, rfc3339nano
from harness.emulator.api.printers import human_duration, pod_summary
from harness.emulator.api.registry import Registry
from harness.emulator.api.status import ApiError

REG = Registry()


@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "<invalid>"), (-0.5, "0s"), (0, "0s"), (119, "119s"), (120, "2m"), (150, "2m30s"),
    (600, "10m"), (179 * 60 + 59, "179m"), (3 * 3600, "3h"), (3 * 3600 + 1800, "3h30m"),
    (47 * 3600, "47h"), (48 * 3600, "2d"), (50 * 3600, "2d2h"), (8 * 86400, "8d"),
    (730 * 86400, "2y"), (731 * 86400, "2y1d"), (9 * 365 * 86400, "9y")])
def test_human_duration_is_apimachinerys(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def _ts(ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - ago))


def _pod(status: dict, *, deleting: bool = False, init: int = 0) -> dict:
    meta = {"name": "p", "creationTimestamp": _ts(30)}
    if deleting:
        meta["deletionTimestamp"] = _ts(0)
    spec = {"containers": [{"name": "c"}],
            "initContainers": [{"name": f"i{n}"} for n in range(init)]}
    return {"metadata": meta, "spec": spec, "status": status}


def test_pod_ready_status_restarts_as_printpod() -> None:
    running = {"phase": "Running", "containerStatuses": [
        {"name": "c", "ready": True, "restartCount": 0, "state": {"running": {}}}]}
    assert pod_summary(_pod(running)) == ("1/1", "Running", "0")
    assert pod_summary(_pod(running, deleting=True))[1] == "Terminating"
    crash = {"phase": "Running", "containerStatuses": [
        {"name": "c", "ready": False, "restartCount": 3,
         "state": {"waiting": {"reason": "CrashLoopBackOff"}},
         "lastState": {"terminated": {"exitCode": 1, "finishedAt": _ts(65)}}}]}
    assert pod_summary(_pod(crash)) == ("0/1", "CrashLoopBackOff", "3 (65s ago)")
    exited = {"phase": "Running", "containerStatuses": [
        {"name": "c", "ready": False, "restartCount": 0,
         "state": {"terminated": {"exitCode": 2}}}]}
    assert pod_summary(_pod(exited))[1] == "ExitCode:2"
    initializing = {"phase": "Pending", "initContainerStatuses": [
        {"name": "i0", "restartCount": 0, "state": {"running": {}}}]}
    assert pod_summary(_pod(initializing, init=1)) == ("0/1", "Init:0/1", "0")
    assert pod_summary(_pod({"phase": "Pending"})) == ("0/1", "Pending", "0")


def test_jsonpath_subset_of_printer_columns() -> None:
    obj = {"metadata": {"labels": {"serving.knative.dev/configuration": "cfg"}},
           "status": {"conditions": [{"type": "Other", "status": "False"},
                                     {"type": "Ready", "status": "True"}],
                      "traffic": [{"tag": "prev", "percent": 10},
                                  {"latestRevision": True, "percent": 90}]}}
    assert find(obj, ".metadata.labels['serving\\.knative\\.dev/configuration']") == ["cfg"]
    assert find(obj, ".status.conditions[?(@.type=='Ready')].status") == ["True"]
    assert find(obj, ".status.traffic[?(@.latestRevision==true)].percent") == [90]
    assert find(obj, ".status.traffic[0].tag") == ["prev"]
    assert find(obj, ".status.traffic[*].percent") == [10, 90]
    assert find(obj, ".status.url") == []
    with pytest.raises(ValueError, match="unsupported"):
        find(obj, ".status.traffic[?(@.percent>5)]")


def test_crd_table_cells_and_missing_values() -> None:
    isvc = REG.get("serving.kserve.io/inferenceservices")
    obj = {"metadata": {"name": "x", "creationTimestamp": _ts(130)},
           "status": {"url": "http://x.ns.example.com", "conditions": [
               {"type": "Ready", "status": "True"}], "components": {"predictor": {
                   "traffic": [{"latestRevision": True, "percent": 100,
                                "revisionName": "x-predictor-00001"}]}}}}
    t = printers.table(isvc.columns, [obj], include_object="Object")
    assert [c["name"] for c in t["columnDefinitions"]] == [
        "Name", "URL", "Ready", "Prev", "Latest", "PrevRolledoutRevision",
        "LatestReadyRevision", "Age"]
    assert t["rows"][0]["cells"] == ["x", "http://x.ns.example.com", "True", None, 100, None,
                                     "x-predictor-00001", "2m10s"]
    assert t["rows"][0]["object"] is obj
    meta_only = printers.table(isvc.columns, [obj])["rows"][0]["object"]
    assert meta_only == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                         "metadata": obj["metadata"]}
    assert "object" not in printers.table(isvc.columns, [obj], include_object="None")[
        "rows"][0]


def test_openapi_v3_lets_kubectl_validate_on_the_server() -> None:
    api = OpenAPI(REG)
    index = api.v3_index()["paths"]
    assert {"api/v1", "apis/apps/v1", "apis/serving.kserve.io/v1beta1",
            "apis/serving.knative.dev/v1"} <= set(index)
    assert index["api/v1"]["serverRelativeURL"].startswith("/openapi/v3/api/v1?hash=")
    for gv, kind, smp in (("api/v1", "Pod", True),
                          ("apis/serving.kserve.io/v1beta1", "InferenceService", False)):
        doc = json.loads(api.v3(gv) or b"{}")
        patches = [item["patch"] for item in doc["paths"].values() if "patch" in item
                   and item["patch"]["x-kubernetes-group-version-kind"]["kind"] == kind]
        assert len(patches) == 1
        names = {p["name"] for p in patches[0]["parameters"] if p["in"] == "query"}
        assert {"fieldValidation", "dryRun", "fieldManager", "force"} <= names
        types = set(patches[0]["requestBody"]["content"])
        assert ("application/strategic-merge-patch+json" in types) is smp
        schemas = doc["components"]["schemas"]
        found = [s for s in schemas.values() if any(
            g["kind"] == kind for g in s.get("x-kubernetes-group-version-kind") or [])]
        assert len(found) == 1
        for ref in json.dumps(doc).split('"$ref":"')[1:]:
            assert ref.split('"')[0].removeprefix("#/components/schemas/") in schemas
    assert api.v3("apis/nothing/v1") is None
    v2 = json.loads(api.v2())
    assert v2["swagger"] == "2.0" and "io.k8s.api.core.v1.Pod" in v2["definitions"]


def test_unknown_fields_against_the_published_schemas() -> None:
    dep = REG.get("apps/deployments")
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}}, "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicyy": "x"}],
                         "nodeSelector": {"any-key": "ok"}}}, "bogus": 1}}
    assert unknown_fields(kind_schema(dep), body) == [
        "spec.template.spec.containers[0].imagePullPolicyy", "spec.bogus"]
    isvc = REG.get("serving.kserve.io/inferenceservices")
    doc = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
           "metadata": {"name": "x", "annotations": {"a": "b"}},
           "spec": {"predictor": {"minReplica": 0, "model": {"modelFormat": {"name": "x"}}}},
           "status": {"anything": True}}
    assert unknown_fields(kind_schema(isvc), doc) == ["spec.predictor.minReplica"]
    assert check(isvc, doc, None) == [] and check(isvc, doc, "Ignore") == []
    assert check(isvc, doc, "Warn") == ['unknown field "spec.predictor.minReplica"']
    with pytest.raises(ApiError, match='strict decoding error: unknown field '
                                       '"spec.predictor.minReplica"') as err:
        check(isvc, doc, "Strict")
    assert err.value.code == 400
    with pytest.raises(ApiError, match="Unsupported value"):
        check(isvc, doc, "strict")


def test_server_side_apply_refuses_unknown_fields_as_structured_merge_diff() -> None:
    dep = REG.get("apps/deployments")
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"containers": [
                {"name": "web", "image": "i", "imagePullPolicyy": "x",
                 "ports": [{"containerPort": 80, "protocol": "TCP", "hostIPP": "x"}]}]}}}}
    with pytest.raises(ApiError) as err:
        check_apply(dep, body, "ns", "d")
    assert err.value.code == 500 and err.value.to_status().get("reason") is None
    assert err.value.message == (
        "failed to create typed patch object (ns/d; apps/v1, Kind=Deployment): errors:\n"
        '  .spec.template.spec.containers[name="web"].imagePullPolicyy: field not declared '
        "in schema\n"
        '  .spec.template.spec.containers[name="web"].ports[containerPort=80,'
        'protocol="TCP"].hostIPP: field not declared in schema')
    check_apply(dep, {**body, "spec": {"replicas": 1}}, "ns", "d")


def _ld(num: int, payload: bytes) -> bytes:
    return bytes([num << 3 | 2, len(payload)]) + payload


def _entry(key: bytes, value: bytes) -> bytes:
    return _ld(1, key) + _ld(2, value)


def test_protobuf_configmap_and_unknown_field() -> None:
    meta = _ld(1, b"cm") + _ld(2, b"") + _ld(8, b"") + _ld(11, _entry(b"app", b"x"))
    raw = _ld(1, meta) + _ld(2, _entry(b"k", b"v")) + _ld(3, _entry(b"bin", b"\x00\x01"))
    body = b"k8s\x00" + _ld(1, _ld(1, b"v1") + _ld(2, b"ConfigMap")) + _ld(2, raw)
    assert protobuf.decode(body) == {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cm", "labels": {"app": "x"}}, "data": {"k": "v"},
        "binaryData": {"bin": base64.b64encode(b"\x00\x01").decode()}}
    odd = b"k8s\x00" + _ld(1, _ld(1, b"v1") + _ld(2, b"ConfigMap")) + _ld(2, _ld(9, b"x"))
    with pytest.raises(protobuf.ProtobufError, match="field 9 of ConfigMap"):
        protobuf.decode(odd)
    with pytest.raises(protobuf.ProtobufError, match="magic"):
        protobuf.decode(b'{"kind": "ConfigMap"}')


def test_log_lines_select_tail_since_timestamps(tmp_path: Path) -> None:
    now = time.time()
    path = tmp_path / "c.log"
    path.write_bytes(b"".join(
        f"{rfc3339nano(now - age)} stdout F line {i}\n".encode()
        for i, age in enumerate((300, 100, 5))) + b"2026-01-01T00:00:00.0Z stdout F partial")
    lines, offset = read_lines(path)
    assert [ln.text for ln in lines] == [b"line 0", b"line 1", b"line 2"]
    assert offset == path.stat().st_size - len(b"2026-01-01T00:00:00.0Z stdout F partial")
    assert LogQuery().body(lines) == b"line 0\nline 1\nline 2\n"
    assert LogQuery(tail_lines=1).body(lines) == b"line 2\n"
    assert LogQuery(tail_lines=0).body(lines) == b""
    assert LogQuery(since_time=now - 60).body(lines) == b"line 2\n"
    assert LogQuery(limit_bytes=8).body(lines) == b"line 0\nl"
    stamped = LogQuery(timestamps=True, tail_lines=1).body(lines).decode()
    assert stamped == f"{lines[2].stamp} line 2\n"
    parsed = parse_line(f"{rfc3339nano(1700000000.25)} stderr F x".encode())
    assert parsed is not None and parsed.stream == "stderr"
    assert abs(parsed.time - 1700000000.25) < 1e-6


def test_capture_writes_both_streams(tmp_path: Path) -> None:
    import asyncio

    async def run() -> None:
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", "echo out; echo err >&2; printf tail",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        await capture(proc.stdout, proc.stderr, tmp_path / "c.log")
        await proc.wait()

    asyncio.run(run())
    lines, _ = read_lines(tmp_path / "c.log")
    assert sorted((ln.stream, ln.text, ln.full) for ln in lines) == [
        ("stderr", b"err", True), ("stdout", b"out", True), ("stdout", b"tail", True)]
