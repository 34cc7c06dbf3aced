"""A pod's volumes as files under the run's folder, as kubelet's volume plugins make them.

Each volume is a folder ``<pod dir>/volumes/<name>`` (bind-mounted into the containers by
:mod:`harness.nodeagent.mounts`), shared by all the pod's containers and removed with the
pod:

- ``emptyDir``: an empty folder (mode 0777); ``medium: Memory`` puts it on the host's
  ``/dev/shm`` tmpfs (``/dev/shm/hxm<run>-<pod uid>-<name>``, linked from the volume
  folder; :func:`sweep_memory` removes a crashed run's);
- ``configMap`` / ``secret``: every key, or the ``items`` (``key`` -> ``path``, ``mode``),
  ``defaultMode`` (0644), ``optional``, in kubelet's atomic layout
  (:mod:`harness.nodeagent.atomic_writer`);
- ``downwardAPI``: ``fieldRef`` and ``resourceFieldRef`` items (:mod:`harness.nodeagent.downward`);
- ``projected``: configMap, secret and downwardAPI sources plus ``serviceAccountToken``: a
  token from the TokenRequest API bound to the pod (``audience``, ``expirationSeconds``),
  refreshed as kubelet's token manager does (:func:`requires_refresh`: past 80 % of its
  life, or older than 24 h). The ServiceAccount admission plugin's ``kube-api-access-*``
  volume is one of these (token, the ``kube-root-ca.crt`` ConfigMap's ``ca.crt``, the
  namespace).
- ``hostPath``: the host's path itself; ``persistentVolumeClaim``: the folder of the
  hostPath or local PersistentVolume bound to the claim (:mod:`harness.nodeagent.pvc`).

:meth:`PodVolumes.sync` re-renders the API-backed volumes every :data:`SYNC_S` seconds
(kubelet's sync period), so ConfigMap and Secret edits and token refreshes reach running
containers through the atomic ``..data`` swap. Errors carry kubelet's words
(``configmaps "x" not found``, ``configmap references non-existent config key: k``) for
the ``FailedMount`` event.
"""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from harness.nodeagent import atomic_writer, pvc
from harness.nodeagent.atomic_writer import File
from harness.nodeagent.downward import FieldError, field_value, resource_value

SYNC_S = 60.0
MEMORY_ROOT = Path("/dev/shm")
MAX_TOKEN_TTL_S = 24 * 3600
DEFAULT_TOKEN_S = 3600


class VolumeError(RuntimeError):
    """A volume that cannot be set up (the message is kubelet's error)."""


def memory_prefix(run_id: str) -> str:
    return f"hxm{run_id}-"


def sweep_memory(run_id: str) -> list[str]:
    """Remove the ``medium: Memory`` emptyDirs a run left in /dev/shm."""
    removed = []
    for path in sorted(MEMORY_ROOT.glob(f"{memory_prefix(run_id)}*")):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(str(path))
    return removed


def requires_refresh(expiration: dt.datetime, ttl_s: int, now: dt.datetime,
                     jitter_s: float = 0.0) -> bool:
    """Kubelet's token manager: refresh past 80 % of the token's life, or when it was
    issued more than 24 h ago."""
    issued = expiration - dt.timedelta(seconds=ttl_s)
    if now > issued + dt.timedelta(seconds=MAX_TOKEN_TTL_S - jitter_s):
        return True
    return now > expiration - dt.timedelta(seconds=ttl_s * 20 // 100 + jitter_s)


def key_payload(data: dict[str, bytes], items: list[dict[str, Any]] | None,
                default_mode: int, optional: bool, what: str) -> dict[str, File]:
    """Kubelet's ``MakePayload`` for a configMap or secret (``what``)."""
    if not items:
        return {k: File(v, default_mode) for k, v in data.items()}
    out = {}
    for item in items:
        if item["key"] not in data:
            if optional:
                continue
            raise VolumeError(f"{what} references non-existent {what} key: {item['key']}"
                              if what == "secret" else
                              f"configmap references non-existent config key: {item['key']}")
        out[item["path"]] = File(data[item["key"]], int(item.get("mode", default_mode)))
    return out


def _object_data(obj: dict[str, Any], secret: bool) -> dict[str, bytes]:
    if secret:
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    out = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    out.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return out


class PodVolumes:
    """The volumes of one pod (see the module docstring)."""

    def __init__(self, pod: dict[str, Any], root: Path, client: httpx.Client, *,
                 run_id: str, host_ip: str = "", pod_ip: str = "",
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.pod = pod
        self.ns = pod["metadata"]["namespace"]
        self.root = root
        self.client = client
        self.run_id = run_id
        self.host_ip = host_ip
        self.pod_ip = pod_ip
        self.clock = clock
        self.dirs: dict[str, Path] = {}
        self.tokens: dict[tuple[str, int], tuple[str, dt.datetime]] = {}
        self._allocatable: dict[str, Any] | None = None
        self._last_sync = 0.0

    # ------------------------------------------------------------ lifecycle

    def setup(self) -> None:
        """Create every volume not made yet; :class:`VolumeError` for the first that
        cannot be (the others made so far stay: the next call goes on)."""
        for vol in self.pod["spec"].get("volumes") or []:
            if vol["name"] in self.dirs:
                continue
            try:
                self.dirs[vol["name"]] = self._make(vol)
            except VolumeError as exc:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{vol["name"]}" : '
                                  f"{exc}") from None
        self._last_sync = time.monotonic()

    def sync(self, force: bool = False) -> list[str]:
        """Re-render the API-backed volumes when :data:`SYNC_S` has passed; returns the
        errors (the volumes keep their last contents, as on a kubelet)."""
        if not force and time.monotonic() - self._last_sync < SYNC_S:
            return []
        self._last_sync = time.monotonic()
        errors = []
        for vol in self.pod["spec"].get("volumes") or []:
            if vol["name"] not in self.dirs or not any(
                    k in vol for k in ("configMap", "secret", "projected", "downwardAPI")):
                continue
            try:
                atomic_writer.write(self.dirs[vol["name"]], self._payload(vol))
            except VolumeError as exc:
                errors.append(f'volume "{vol["name"]}": {exc}')
        return errors

    def teardown(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        for vol in self.pod["spec"].get("volumes") or []:
            shutil.rmtree(self._memory_dir(vol["name"]), ignore_errors=True)

    # ------------------------------------------------------------ one volume

    def _memory_dir(self, name: str) -> Path:
        return MEMORY_ROOT / f"{memory_prefix(self.run_id)}{self.pod['metadata']['uid']}-{name}"

    def _make(self, vol: dict[str, Any]) -> Path:
        path = self.root / vol["name"]
        if "emptyDir" in vol:
            self.root.mkdir(parents=True, exist_ok=True)
            if (vol["emptyDir"] or {}).get("medium") == "Memory":
                shm = self._memory_dir(vol["name"])
                shm.mkdir(mode=0o777, exist_ok=True)
                shm.chmod(0o777)
                if not path.is_symlink():
                    path.symlink_to(shm)
            else:
                path.mkdir(mode=0o777, exist_ok=True)
                path.chmod(0o777)
            return path
        if "hostPath" in vol:
            host = Path(vol["hostPath"]["path"])
            kind = vol["hostPath"].get("type") or ""
            if kind == "DirectoryOrCreate":
                host.mkdir(parents=True, exist_ok=True)
            elif kind == "FileOrCreate" and not host.exists():
                host.parent.mkdir(parents=True, exist_ok=True)
                host.touch()
            if not host.exists():
                raise VolumeError(f"hostPath type check failed: {host} does not exist")
            return host
        if "persistentVolumeClaim" in vol:
            try:
                return pvc.claim_path(self.client, self.ns, vol["persistentVolumeClaim"])
            except pvc.ClaimError as exc:
                raise VolumeError(str(exc)) from None
        if any(k in vol for k in ("configMap", "secret", "projected", "downwardAPI")):
            payload = self._payload(vol)
            atomic_writer.write(path, payload)
            return path
        kind = next((k for k in vol if k != "name"), "?")
        raise VolumeError(f"the node agent does not support volume type {kind}"
                          " (it has emptyDir, configMap, secret, downwardAPI, projected, "
                          "hostPath, persistentVolumeClaim)")

    def _payload(self, vol: dict[str, Any]) -> dict[str, File]:
        try:
            if "configMap" in vol or "secret" in vol:
                secret = "secret" in vol
                src = vol["secret" if secret else "configMap"]
                mode = int(src.get("defaultMode", 0o644))
                name = src.get("secretName" if secret else "name", "")
                return self._keys(src, name, mode, secret)
            if "downwardAPI" in vol:
                src = vol["downwardAPI"]
                return self._downward(src.get("items") or [],
                                      int(src.get("defaultMode", 0o644)))
            return self._projected(vol["projected"])
        except atomic_writer.PayloadError as exc:
            raise VolumeError(str(exc)) from None

    def _keys(self, src: dict[str, Any], name: str, mode: int, secret: bool) -> dict[str, File]:
        optional = bool(src.get("optional"))
        obj = self._get("secrets" if secret else "configmaps", name, optional)
        data = _object_data(obj, secret) if obj is not None else {}
        return key_payload(data, src.get("items"), mode, optional,
                           "secret" if secret else "configmap")

    def _get(self, kind: str, name: str, optional: bool) -> dict[str, Any] | None:
        try:
            r = self.client.get(f"/api/v1/namespaces/{self.ns}/{kind}/{name}")
        except httpx.HTTPError as exc:
            raise VolumeError(f"cannot read {kind} {self.ns}/{name}: {exc}") from None
        if r.status_code == 404 and optional:
            return None
        if r.status_code != 200:
            raise VolumeError(_message(r))
        return dict(r.json())

    def _downward(self, items: list[dict[str, Any]], mode: int) -> dict[str, File]:
        out = {}
        for item in items:
            try:
                if "fieldRef" in item:
                    value = field_value(self.pod, item["fieldRef"]["fieldPath"],
                                        pod_ip=self.pod_ip, host_ip=self.host_ip)
                else:
                    ref = item["resourceFieldRef"]
                    value = resource_value(self._container(ref.get("containerName")),
                                           ref["resource"], ref.get("divisor"),
                                           self.node_allocatable())
            except (FieldError, KeyError) as exc:
                raise VolumeError(str(exc)) from None
            out[item["path"]] = File(value.encode(), int(item.get("mode", mode)))
        return out

    def _container(self, name: str | None) -> dict[str, Any]:
        spec = self.pod["spec"]
        for c in [*spec.get("containers", []), *spec.get("initContainers", [])]:
            if c["name"] == name:
                return dict(c)
        raise VolumeError(f"container {name!r} not found in pod "
                          f"{self.pod['metadata']['name']}")

    def node_allocatable(self) -> dict[str, Any]:
        if self._allocatable is None:
            node = self.pod["spec"].get("nodeName", "")
            r = self.client.get(f"/api/v1/nodes/{node}")
            self._allocatable = (r.json().get("status", {}).get("allocatable") or {}
                                 if r.status_code == 200 else {})
        return self._allocatable

    def _projected(self, src: dict[str, Any]) -> dict[str, File]:
        mode = int(src.get("defaultMode", 0o644))
        out: dict[str, File] = {}
        for source in src.get("sources") or []:
            if "configMap" in source or "secret" in source:
                secret = "secret" in source
                s = source["secret" if secret else "configMap"]
                out.update(self._keys(s, s.get("name", ""), mode, secret))
            elif "downwardAPI" in source:
                out.update(self._downward(source["downwardAPI"].get("items") or [], mode))
            elif "serviceAccountToken" in source:
                tp = source["serviceAccountToken"]
                out[tp["path"]] = File(self.token(tp.get("audience") or "",
                                                  int(tp.get("expirationSeconds",
                                                             DEFAULT_TOKEN_S))).encode(), mode)
            else:
                kinds = ", ".join(source)
                raise VolumeError(f"the node agent does not support projected source {kinds}")
        return out

    def token(self, audience: str, ttl_s: int) -> str:
        """A TokenRequest token for the pod's ServiceAccount, bound to the pod; the cached
        one until :func:`requires_refresh`."""
        key = (audience, ttl_s)
        cached = self.tokens.get(key)
        if cached is not None and not requires_refresh(cached[1], ttl_s, self.clock()):
            return cached[0]
        meta = self.pod["metadata"]
        sa = self.pod["spec"].get("serviceAccountName") or "default"
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": [audience] if audience else None,
                         "expirationSeconds": ttl_s,
                         "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                                            "name": meta["name"], "uid": meta["uid"]}}}
        try:
            r = self.client.post(f"/api/v1/namespaces/{self.ns}/serviceaccounts/{sa}/token",
                                 json=body)
        except httpx.HTTPError as exc:
            raise VolumeError(f"failed to fetch token: {exc}") from None
        if r.status_code != 201:
            raise VolumeError(f"failed to fetch token: {_message(r)}")
        status = r.json()["status"]
        expires = dt.datetime.fromisoformat(status["expirationTimestamp"].replace("Z", "+00:00"))
        self.tokens[key] = (status["token"], expires)
        return str(status["token"])


def _message(r: httpx.Response) -> str:
    try:
        return str(r.json().get("message") or r.text)
    except ValueError:
        return r.text.strip() or f"HTTP {r.status_code}"
