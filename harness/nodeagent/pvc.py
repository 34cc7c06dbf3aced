"""``persistentVolumeClaim`` volumes on the node agent: the host folder of the
PersistentVolume bound to the claim, found as kubelet's volume manager finds it.

The claim is read from the API; it must be bound (``status.phase: Bound``,
``spec.volumeName``; the real PV controller in kube-controller-manager binds it) and not
being deleted; the PersistentVolume it names must point back at the claim's uid
(``spec.claimRef.uid``). Only PVs that are a folder on this host can be mounted:
``hostPath`` (its ``type`` checked as for a hostPath volume) and ``local``.

Errors carry kubelet's words (``error processing PVC ns/claim: PVC is not bound``) for the
pod's ``FailedMount`` event. KServe mounts a ``pvc://claim/path`` storageUri this way: the
claim as volume ``kserve-pvc-source`` at ``/mnt/models`` with ``subPath: path``, no
download (``pkg/webhook/admission/pod/storage_initializer_injector.go``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx


class ClaimError(RuntimeError):
    """The claim's volume cannot be set up (kubelet's message)."""


def _get(client: httpx.Client, path: str, what: str) -> dict[str, Any]:
    try:
        r = client.get(path)
    except httpx.HTTPError as exc:
        raise ClaimError(f"failed to fetch {what} from API server: {exc}") from None
    if r.status_code != 200:
        try:
            message = r.json().get("message") or r.text
        except ValueError:
            message = r.text
        raise ClaimError(f"failed to fetch {what} from API server: {message}")
    return dict(r.json())


def claim_path(client: httpx.Client, namespace: str, source: dict[str, Any]) -> Path:
    """The host folder behind a pod's ``persistentVolumeClaim`` volume source."""
    name = source["claimName"]
    prefix = f"error processing PVC {namespace}/{name}"
    try:
        pvc = _get(client, f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}",
                   "PVC")
        if pvc["metadata"].get("deletionTimestamp"):
            raise ClaimError("PVC is being deleted")
        if (pvc.get("status") or {}).get("phase") != "Bound":
            raise ClaimError("PVC is not bound")
        pv_name = (pvc.get("spec") or {}).get("volumeName")
        if not pv_name:
            raise ClaimError("PVC has empty pvc.Spec.VolumeName")
        pv = _get(client, f"/api/v1/persistentvolumes/{pv_name}", f"PV {pv_name}")
        ref = (pv.get("spec") or {}).get("claimRef")
        if ref is None:
            raise ClaimError(f"found PV object {pv_name} but it has a nil pv.Spec.ClaimRef "
                             "indicating it is not yet bound to the claim")
        if ref.get("uid") != pvc["metadata"]["uid"]:
            raise ClaimError(f"found PV object {pv_name} but its pv.Spec.ClaimRef.UID "
                             f"{ref.get('uid')} does not point to claim.UID "
                             f"{pvc['metadata']['uid']}")
    except ClaimError as exc:
        raise ClaimError(f"{prefix}: {exc}") from None
    return _host_folder(pv)


def _host_folder(pv: dict[str, Any]) -> Path:
    spec = pv["spec"]
    name = pv["metadata"]["name"]
    if "hostPath" in spec:
        path = Path(spec["hostPath"]["path"])
        kind = spec["hostPath"].get("type") or ""
        if kind == "DirectoryOrCreate":
            path.mkdir(mode=0o755, parents=True, exist_ok=True)
        if kind in ("Directory", "DirectoryOrCreate") and not path.is_dir():
            raise ClaimError(f"hostPath type check failed: {path} is not a directory")
        if not path.exists():
            raise ClaimError(f"hostPath type check failed: {path} does not exist")
        return path
    if "local" in spec:
        path = Path(spec["local"]["path"])
        if not path.exists():
            raise ClaimError(f"path {path} does not exist")
        return path
    kinds = [k for k in spec if k not in ("capacity", "accessModes", "claimRef",
                                          "persistentVolumeReclaimPolicy", "storageClassName",
                                          "mountOptions", "volumeMode", "nodeAffinity",
                                          "volumeAttributesClassName")]
    raise ClaimError(f"PV {name}: the node agent mounts only hostPath and local "
                     f"PersistentVolumes, not {kinds[0] if kinds else 'this one'}")
