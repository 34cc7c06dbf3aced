"""The node agent's persistentVolumeClaim volumes (harness.nodeagent.pvc): a bound claim's
hostPath or local PersistentVolume is its folder; every way kubelet refuses one, with
kubelet's words. The API here answers from a dict of objects (the emulator has no PVs);
``tests/upstream/test_upstream_storage.py`` binds real ones with the real PV controller."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.nodeagent.pvc import ClaimError, claim_path

NS = "models"


def api(objects: dict[str, dict[str, Any]]) -> httpx.Client:
    def handle(request: httpx.Request) -> httpx.Response:
        obj = objects.get(request.url.path)
        if obj is None:
            name = request.url.path.rsplit("/", 1)[-1]
            kind = request.url.path.rsplit("/", 2)[-2]
            return httpx.Response(404, json={"kind": "Status", "status": "Failure",
                                             "message": f'{kind} "{name}" not found'})
        return httpx.Response(200, content=json.dumps(obj))
    return httpx.Client(transport=httpx.MockTransport(handle), base_url="http://api")


def claim(phase: str = "Bound", volume: str | None = "pv-1", **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "models-pvc", "namespace": NS, "uid": "u-1", **meta},
            "spec": {"volumeName": volume} if volume else {}, "status": {"phase": phase}}


def pv(source: dict[str, Any], uid: str | None = "u-1") -> dict[str, Any]:
    spec: dict[str, Any] = {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadOnlyMany"],
                            **source}
    if uid:
        spec["claimRef"] = {"namespace": NS, "name": "models-pvc", "uid": uid}
    return {"metadata": {"name": "pv-1"}, "spec": spec}


PVC_PATH = f"/api/v1/namespaces/{NS}/persistentvolumeclaims/models-pvc"
PV_PATH = "/api/v1/persistentvolumes/pv-1"


def test_bound_host_path_claim_is_its_folder(tmp_path: Path) -> None:
    client = api({PVC_PATH: claim(), PV_PATH: pv({"hostPath": {"path": str(tmp_path)}})})
    assert claim_path(client, NS, {"claimName": "models-pvc"}) == tmp_path


def test_local_and_directory_or_create(tmp_path: Path) -> None:
    made = tmp_path / "made" / "here"
    client = api({PVC_PATH: claim(), PV_PATH: pv(
        {"hostPath": {"path": str(made), "type": "DirectoryOrCreate"}})})
    assert claim_path(client, NS, {"claimName": "models-pvc"}) == made
    assert made.is_dir()
    client = api({PVC_PATH: claim(), PV_PATH: pv({"local": {"path": str(tmp_path)}})})
    assert claim_path(client, NS, {"claimName": "models-pvc"}) == tmp_path


@pytest.mark.parametrize("objects, words", [
    ({}, 'error processing PVC models/models-pvc: failed to fetch PVC from API server: '
         'persistentvolumeclaims "models-pvc" not found'),
    ({PVC_PATH: claim(phase="Pending", volume=None)},
     "error processing PVC models/models-pvc: PVC is not bound"),
    ({PVC_PATH: claim(volume=None)},
     "error processing PVC models/models-pvc: PVC has empty pvc.Spec.VolumeName"),
    ({PVC_PATH: claim(deletionTimestamp="2026-01-01T00:00:00Z")},
     "error processing PVC models/models-pvc: PVC is being deleted"),
    ({PVC_PATH: claim()}, "failed to fetch PV pv-1 from API server"),
    ({PVC_PATH: claim(), PV_PATH: pv({"hostPath": {"path": "/"}}, uid=None)},
     "found PV object pv-1 but it has a nil pv.Spec.ClaimRef"),
    ({PVC_PATH: claim(), PV_PATH: pv({"hostPath": {"path": "/"}}, uid="u-2")},
     "its pv.Spec.ClaimRef.UID u-2 does not point to claim.UID u-1"),
    ({PVC_PATH: claim(), PV_PATH: pv({"nfs": {"server": "x", "path": "/"}})},
     "PV pv-1: the node agent mounts only hostPath and local PersistentVolumes, not nfs"),
    ({PVC_PATH: claim(), PV_PATH: pv({"hostPath": {"path": "/nonexistent/hx-pvc"}})},
     "hostPath type check failed: /nonexistent/hx-pvc does not exist"),
])
def test_refusals_in_kubelets_words(objects: dict[str, Any], words: str) -> None:
    with pytest.raises(ClaimError) as err:
        claim_path(api(objects), NS, {"claimName": "models-pvc"})
    assert words in str(err.value)
