"""The kubelet: every pod bound to a node becomes a real local model-server process.

For a pod with ``spec.nodeName`` the kubelet, on the controllers' loop:

1. reports the pod started (``hostIP``/``podIP`` 127.0.0.1, ``startTime``, phase Pending,
   ``Initialized``/``ContainersReady``/``Ready`` False) — optionally after a fault delay;
2. runs the storage-initializer step when the pod carries KServe's
   ``serving.kserve.io/storage-initializer-sourceuri`` annotation: the model is really
   fetched into a per-pod folder (:mod:`.storage`); a ``pvc://`` source has no such step
   (KServe mounts the claim): the model is read in place from its folder; otherwise the
   sample model is used; then ``Initialized=True``;
3. starts ``python -m modelserver`` (``fixtures/modelserver``) in its own process group on
   a free 127.0.0.1 port, with the container's ``env`` and ``args`` (``/mnt/models``, the
   model volume's mount path, stands for the pod's model folder; ``--http_port`` is left
   to the kubelet's free port); phase Running and the container ``running`` from the
   process's start, as a kubelet reports a started container; once it listens, the port
   is published as the pod annotation ``emulator.harness.dev/port`` and the container's
   ``ports``;
4. polls ``/v2/health/ready`` and sets ``ContainersReady`` and ``Ready`` True (each
   condition keeps its own ``lastTransitionTime``).

Deletion: a pod with ``deletionTimestamp`` gets SIGTERM (the server drains in-flight
requests), SIGKILL after ``terminationGracePeriodSeconds``, and is then removed from the
store with grace 0. :meth:`Kubelet.on_stop` ends every process so nothing is left behind;
children also get SIGKILL from the kernel if this process dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import sys
import time
from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness.emulator.api import podlogs
from harness.emulator.api.status import ApiError
from harness.emulator.api.store import Store
from harness.emulator.api.subscriptions import WatchEvent
from harness.emulator.controllers.base import Controller, condition
from harness.emulator.controllers.scheduler import record_event
from harness.emulator.controllers.storage import StorageError, fetch, pvc_path
from harness.files import data_path
from harness.objects import REVISION_LABEL, STORAGE_URI_ANNOTATION, condition_is, format_time

log = logging.getLogger(__name__)

MODELSERVER_ROOT = data_path("fixtures", "modelserver")
SAMPLE_MODEL_DIR = MODELSERVER_ROOT / "model"
MODEL_MOUNT = "/mnt/models"
INIT_CONTAINER = "storage-initializer"
"""KServe's init container; its log says what was fetched (``kubectl logs -c``)."""
PORT_ANNOTATION = "emulator.harness.dev/port"
COMPONENT = "kubelet"
_START_TIMEOUT_S = 30.0
_READY_POLL_S = 0.1
_STOP_KILL_S = 5.0
_RESTART_BACKOFF_S = 1.0
MAX_RESTARTS = 5

try:
    _LIBC: Any = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _LIBC = None


def container_args(container: dict[str, Any], model_dir: Path) -> list[str]:
    """The container's ``args`` as the local model server gets them: the model mount
    ``/mnt/models`` is the pod's model folder, and the port is the kubelet's."""
    out = []
    for arg in container.get("args") or []:
        text = str(arg)
        if text.startswith("--http_port"):
            continue
        out.append(text.replace(MODEL_MOUNT, str(model_dir)))
    return out


def _child_setup() -> None:
    """In the child, before exec: die with the parent (Linux ``PR_SET_PDEATHSIG``)."""
    if _LIBC is not None:
        with contextlib.suppress(Exception):
            _LIBC.prctl(1, signal.SIGKILL)


@dataclass
class PodRuntime:
    """What the kubelet holds for one pod."""

    namespace: str
    name: str
    uid: str
    task: asyncio.Task[None] | None = None
    proc: asyncio.subprocess.Process | None = None
    port: int = 0
    terminating: bool = False
    output: deque[str] = field(default_factory=lambda: deque(maxlen=200))
    started: float = field(default_factory=time.monotonic)
    log_path: Path | None = None
    log_offset: int = 0
    capture: asyncio.Task[None] | None = None
    last_terminated: dict[str, Any] | None = None
    """The ``terminated`` state of the container's previous instance (``lastState``)."""
    """Pumps the process's stdout and stderr into ``log_path`` (:mod:`..podlogs`)."""
    ready_s: float | None = None
    """Seconds from the kubelet seeing the pod to the server answering ready."""


class Kubelet(Controller):
    """Runs pods as model-server processes on 127.0.0.1."""

    name = "kubelet"
    resources = ("pods",)

    def __init__(self, store: Store, *, workdir: str | Path, s3_endpoint: str | None = None,
                 pvc_root: str | Path | None = None, startup_delay_s: float = 0.0,
                 ready_timeout_s: float = 120.0, python: str = sys.executable) -> None:
        super().__init__(store)
        self.workdir = Path(workdir)
        self.s3_endpoint = s3_endpoint
        self.pvc_root = pvc_root
        self.startup_delay_s = startup_delay_s
        self.ready_timeout_s = ready_timeout_s
        self.python = python
        self.pods: dict[tuple[str, str], PodRuntime] = {}
        self.startup_times: list[float] = []
        self._background: set[asyncio.Task[None]] = set()
        """Seconds from pod seen to ready, one per pod that became ready."""
        self._http: httpx.AsyncClient | None = None
        self.mutations: Any = None
        """A :class:`~harness.emulator.mutations.Mutations` (extra start-up), or None."""
        self.truth: Any = None
        """A :class:`~harness.emulator.truth.TruthLog` for Ready changes, or None."""

    # ------------------------------------------------------------------ events

    def keys_for(self, resource: str, event: WatchEvent) -> Iterable[Hashable]:
        meta = event.object["metadata"]
        key = (meta["namespace"], meta["name"])
        if (event.object.get("spec") or {}).get("nodeName") or key in self.pods:
            return [key]
        return []

    async def reconcile(self, key: Hashable) -> None:
        ns, name = key  # type: ignore[misc]
        pod = self.store.try_get("pods", name, namespace=ns)
        rt = self.pods.get((ns, name))
        if pod is None or (rt is not None and rt.uid != pod["metadata"]["uid"]):
            if rt is not None and not rt.terminating:
                rt.terminating = True
                await self._kill(rt, grace=0.0)
                self.pods.pop((ns, name), None)
            if pod is None:
                return
            rt = None
        if pod["metadata"].get("deletionTimestamp"):
            if rt is None:
                self._finish_delete(ns, name, pod["metadata"]["uid"])
            elif not rt.terminating:
                rt.terminating = True
                grace = float(pod["metadata"].get("deletionGracePeriodSeconds")
                              or (pod.get("spec") or {}).get("terminationGracePeriodSeconds",
                                                             30))
                task = asyncio.create_task(self._terminate(rt, grace))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            return
        if not (pod.get("spec") or {}).get("nodeName") or rt is not None:
            return
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return
        rt = PodRuntime(ns, name, pod["metadata"]["uid"])
        self.pods[(ns, name)] = rt
        rt.task = asyncio.create_task(self._run(rt, pod), name=f"kubelet-{ns}-{name}")

    # ------------------------------------------------------------------ pod life

    def _patch_status(self, rt: PodRuntime, change: dict[str, Any],
                      conditions: dict[str, tuple[str, str]] | None = None) -> None:
        pod = self.store.try_get("pods", rt.name, namespace=rt.namespace)
        if pod is None or pod["metadata"]["uid"] != rt.uid:
            return
        status = dict(pod.get("status") or {})
        was_ready = condition_is(pod, "Ready")
        status.update(change)
        if conditions:
            prev = status.get("conditions") or []
            by_type = {c["type"]: c for c in prev}
            for type_, (value, reason) in conditions.items():
                by_type[type_] = condition(type_, value, reason, "", prev)
            order = ["PodScheduled", "Initialized", "ContainersReady", "Ready"]
            status["conditions"] = sorted(by_type.values(), key=lambda c: order.index(
                c["type"]) if c["type"] in order else len(order))
        try:
            self.store.patch("pods", rt.name, [{"op": "add", "path": "/status",
                                                "value": status}],
                             namespace=rt.namespace, patch_type="json", subresource="status")
        except ApiError as exc:
            if exc.code != 404:
                raise
            return
        if self.truth is not None and conditions and "Ready" in conditions:
            now_ready = conditions["Ready"][0] == "True"
            if now_ready != was_ready:
                self.truth.add("pod-ready" if now_ready else "pod-unready", rt.namespace,
                               rt.name, revision=(pod["metadata"].get("labels") or {}).get(
                                   REVISION_LABEL, ""))

    def _container_status(self, pod: dict[str, Any], state: dict[str, Any],
                          ready: bool, restarts: int = 0,
                          last: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        out = []
        for c in (pod.get("spec") or {}).get("containers") or []:
            out.append({"name": c.get("name", "kserve-container"),
                        "image": c.get("image", ""),
                        "imageID": "", "ready": ready, "restartCount": restarts,
                        "started": "running" in state, "state": state,
                        "lastState": {"terminated": last} if last else {}})
        return out

    async def _run(self, rt: PodRuntime, pod: dict[str, Any]) -> None:
        try:
            await self._start(rt, pod)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported on the pod
            log.warning("kubelet: pod %s/%s failed: %s", rt.namespace, rt.name, exc)
            record_event(self.store, pod, "Warning", "Failed", str(exc), COMPONENT)
            self._patch_status(rt, {"phase": "Failed", "message": str(exc)[:500]},
                               {"ContainersReady": ("False", "ContainersNotReady"),
                                "Ready": ("False", "ContainersNotReady")})

    async def _start(self, rt: PodRuntime, pod: dict[str, Any]) -> None:
        spec = pod.get("spec") or {}
        uri = (pod["metadata"].get("annotations") or {}).get(STORAGE_URI_ANNOTATION)
        on_pvc = bool(uri) and str(uri).startswith("pvc://")
        has_init = bool(uri) and not on_pvc   # KServe mounts a pvc:// claim itself
        self._patch_status(rt, {"phase": "Pending", "hostIP": "127.0.0.1",
                                "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
                                "startTime": format_time()},
                           {"Initialized": ("False" if has_init else "True",
                                            "ContainersNotInitialized" if has_init else ""),
                            "ContainersReady": ("False", "ContainersNotReady"),
                            "Ready": ("False", "ContainersNotReady")})
        delay = self.startup_delay_s
        if self.mutations:
            delay += self.mutations.startup_delay(self.store, pod)
        if delay > 0:
            await asyncio.sleep(delay)
        pod_dir = self.workdir / rt.namespace / rt.name
        model_dir = SAMPLE_MODEL_DIR
        if on_pvc:
            try:
                model_dir = pvc_path(str(uri), self.pvc_root)
            except StorageError as exc:
                record_event(self.store, pod, "Warning", "FailedMount",
                             f"MountVolume.SetUp failed for volume \"kserve-pvc-source\": "
                             f"{exc}", COMPONENT)
                return
        elif uri:
            model_dir = pod_dir / "models"
            started = format_time()
            init_log = podlogs.start_instance(self.workdir, rt.namespace, rt.name,
                                              INIT_CONTAINER)
            podlogs.append(init_log, "stderr", [
                f"Initializing, args: src_uri [{uri}] dest_path[ [/mnt/models]",
                f"Copying contents of {uri} to local"])
            try:
                await asyncio.to_thread(fetch, uri, model_dir, s3_endpoint=self.s3_endpoint,
                                        pvc_root=self.pvc_root)
                podlogs.append(init_log, "stderr", [
                    f"Successfully copied {uri} to /mnt/models"])
            except StorageError as exc:
                podlogs.append(init_log, "stderr", [f"RuntimeError: {exc}"])
                self._patch_status(rt, {"initContainerStatuses": [{
                    "name": INIT_CONTAINER, "ready": False, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 1, "reason": "Error",
                                             "message": str(exc)[:500],
                                             "startedAt": started,
                                             "finishedAt": format_time()}}}]},
                    {"Initialized": ("False", "ContainersNotInitialized")})
                record_event(self.store, pod, "Warning", "Failed",
                             f"storage-initializer: {exc}", COMPONENT)
                return
            self._patch_status(rt, {"initContainerStatuses": [{
                "name": INIT_CONTAINER, "ready": True, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                         "startedAt": started, "finishedAt": format_time()}}}]},
                {"Initialized": ("True", "")})
        container = (spec.get("containers") or [{}])[0]
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        for item in container.get("env") or []:
            if isinstance(item, dict) and "name" in item and "value" in item:
                env[str(item["name"])] = str(item["value"])
        grace = float(spec.get("terminationGracePeriodSeconds", 30))
        env.update({"PYTHONPATH": str(MODELSERVER_ROOT), "HOST": "127.0.0.1", "PORT": "0",
                    "MODEL_DIR": str(model_dir), "POD_NAME": rt.name,
                    "PYTHONUNBUFFERED": "1", "SHUTDOWN_GRACE": f"{grace}s"})
        name = container.get("name", "kserve-container")
        args = container_args(container, model_dir)
        pod_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(MAX_RESTARTS + 1):
            if rt.terminating:
                return
            if attempt:
                await asyncio.sleep(min(_RESTART_BACKOFF_S * attempt, 5.0))
                if rt.terminating:
                    return
            code = await self._run_container(rt, env, pod_dir, name, attempt, args)
            if rt.terminating:
                return
            record_event(self.store, pod, "Warning", "BackOff",
                         f"Back-off restarting container {name} (exit code {code})",
                         COMPONENT)
        self._patch_status(rt, {"phase": "Failed"},
                           {"ContainersReady": ("False", "ContainersNotReady"),
                            "Ready": ("False", "ContainersNotReady")})

    async def _run_container(self, rt: PodRuntime, env: dict[str, str], pod_dir: Path,
                             name: str, restarts: int, args: list[str] | None = None) -> int:
        """Start the model server, publish its port, wait ready; returns its exit code."""
        rt.log_path = podlogs.start_instance(self.workdir, rt.namespace, rt.name, name)
        rt.log_offset = 0
        rt.proc = await asyncio.create_subprocess_exec(
            self.python, "-m", "modelserver", *(args or []), env=env,
            cwd=str(MODELSERVER_ROOT),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True,
            preexec_fn=_child_setup)
        rt.capture = asyncio.create_task(podlogs.capture(rt.proc.stdout, rt.proc.stderr,
                                                         rt.log_path))
        # running from the moment the process exists, as the kubelet reports a container
        # the runtime started (its server's start-up counts toward readiness, not here)
        fresh = self.store.get("pods", rt.name, namespace=rt.namespace)
        started = format_time()
        self._patch_status(rt, {"phase": "Running", "containerStatuses": self._container_status(
            fresh, {"running": {"startedAt": started}}, False, restarts,
            rt.last_terminated)})
        record_event(self.store, fresh, "Normal", "Started", f"Started container {name}",
                     COMPONENT)
        try:
            rt.port = await self._wait_port(rt)
        except RuntimeError:
            if rt.proc.returncode is None:
                await self._kill(rt, grace=0.0, cancel_task=False)
            return rt.proc.returncode if rt.proc.returncode is not None else 1
        self.store.patch("pods", rt.name, {"metadata": {"annotations": {
            PORT_ANNOTATION: str(rt.port)}}}, namespace=rt.namespace)
        fresh = self.store.get("pods", rt.name, namespace=rt.namespace)
        try:
            await self._wait_ready(rt)
        except RuntimeError:
            if rt.terminating:
                return 0
            await self._kill(rt, grace=1.0, cancel_task=False)
            return rt.proc.returncode if rt.proc.returncode is not None else 1
        if rt.ready_s is None:
            rt.ready_s = time.monotonic() - rt.started
            self.startup_times.append(rt.ready_s)
        self._patch_status(rt, {"containerStatuses": self._container_status(
            fresh, {"running": {"startedAt": started}}, True, restarts, rt.last_terminated)},
            {"ContainersReady": ("True", ""), "Ready": ("True", "")})
        code = await rt.proc.wait()
        await self._end_capture(rt)
        self._read_log(rt)
        if not rt.terminating:
            log.warning("kubelet: %s/%s exited with %s: %s", rt.namespace, rt.name, code,
                        " | ".join(list(rt.output)[-5:]))
            rt.last_terminated = {"exitCode": code, "reason": "Error",
                                  "startedAt": started, "finishedAt": format_time()}
            self._patch_status(rt, {"containerStatuses": self._container_status(
                fresh, {"terminated": rt.last_terminated}, False, restarts + 1,
                rt.last_terminated)},
                {"ContainersReady": ("False", "ContainersNotReady"),
                 "Ready": ("False", "ContainersNotReady")})
        return code

    @staticmethod
    async def _end_capture(rt: PodRuntime) -> None:
        """Wait (briefly) for the log pump to drain the pipes of an exited process."""
        if rt.capture is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(rt.capture), 2.0)

    def _read_log(self, rt: PodRuntime) -> str:
        """New complete output lines of the container since the last read (also kept in
        ``rt.output``)."""
        if rt.log_path is None:
            return ""
        try:
            lines, rt.log_offset = podlogs.read_lines(rt.log_path, rt.log_offset)
        except OSError:
            return ""
        texts = [ln.text.decode(errors="replace") for ln in lines]
        rt.output.extend(t for t in texts if t)
        return "".join(t + "\n" for t in texts)

    async def _wait_port(self, rt: PodRuntime) -> int:
        assert rt.proc is not None
        deadline = time.monotonic() + _START_TIMEOUT_S
        text = ""
        while time.monotonic() < deadline:
            text += self._read_log(rt)
            for line in text.split("\n")[:-1]:  # complete lines only
                if "listening on http://" in line:
                    return int(line.rsplit(":", 1)[1].strip("/ "))
            if rt.proc.returncode is not None:
                break
            await asyncio.sleep(0.02)
        raise RuntimeError("model server did not start: " + " | ".join(list(rt.output)[-5:]))

    async def _wait_ready(self, rt: PodRuntime) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=2.0)
        url = f"http://127.0.0.1:{rt.port}/v2/health/ready"
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if rt.proc is None or rt.proc.returncode is not None or rt.terminating:
                raise RuntimeError("model server exited before it was ready")
            try:
                resp = await self._http.get(url)
                if resp.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(_READY_POLL_S)
        raise RuntimeError(f"not ready within {self.ready_timeout_s:.0f} s")

    # ------------------------------------------------------------------ termination

    async def _terminate(self, rt: PodRuntime, grace: float) -> None:
        self._patch_status(rt, {}, {"ContainersReady": ("False", "ContainersNotReady"),
                                    "Ready": ("False", "ContainersNotReady")})
        await self._kill(rt, grace=grace)
        self.pods.pop((rt.namespace, rt.name), None)
        self._finish_delete(rt.namespace, rt.name, rt.uid)

    def _finish_delete(self, ns: str, name: str, uid: str) -> None:
        shutil.rmtree(self.workdir / ns / name, ignore_errors=True)
        with contextlib.suppress(ApiError):
            self.store.delete("pods", name, namespace=ns, grace_period_seconds=0,
                              preconditions={"uid": uid})

    async def _kill(self, rt: PodRuntime, *, grace: float, cancel_task: bool = True) -> None:
        """SIGTERM the process group, SIGKILL after ``grace`` seconds; always reaps."""
        if rt.task is not None and rt.proc is None:
            rt.task.cancel()
        proc = rt.proc
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), max(grace, 0.1))
            except TimeoutError:
                pass
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), _STOP_KILL_S)
        await self._end_capture(rt)
        if cancel_task and rt.task is not None and not rt.task.done():
            rt.task.cancel()

    async def on_stop(self) -> None:
        runtimes = list(self.pods.values())
        for rt in runtimes:
            rt.terminating = True
        await asyncio.gather(*(self._kill(rt, grace=_STOP_KILL_S) for rt in runtimes),
                             return_exceptions=True)
        self.pods.clear()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def pids(self) -> list[int]:
        return [rt.proc.pid for rt in self.pods.values() if rt.proc is not None]
