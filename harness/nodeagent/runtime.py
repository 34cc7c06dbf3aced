"""Running one pod as local processes in its own network namespace (the node agent's
container runtime).

A :class:`PodRunner` (one thread per pod) takes a pod whose images are all in the image
table, gives it a namespace and an address (:mod:`harness.nodeagent.network`), reports
it Pending with ``podIP``/``hostIP``/``startTime``, runs the init containers in order
(each to completion), then starts every container with ``ip netns exec``: its command from
the table (or the container's ``command``/``args``), its ``env`` (the Service variables
kubelet sets, :mod:`harness.nodeagent.serviceenv`, literal values, ``fieldRef``,
``resourceFieldRef``, ``configMapKeyRef``, ``secretKeyRef``), stdout and
stderr to one log file per instance (``<pod dir>/<container>/<n>.log``; the previous one
is kept for ``kubectl logs --previous``), kubelet's managed ``/etc/hosts``. Before any
container, the pod's volumes are made
(:mod:`harness.nodeagent.volumes`, ``FailedMount`` events until they can be); each
container sees them at its mountPaths through the mount setup step
(:mod:`harness.nodeagent.mounts`). Readiness and liveness probes (HTTP GET with kubelet's
``User-Agent: kube-probe/1.34``, TCP, exec inside the container) decide ``Ready``; a
container that exits is restarted per ``restartPolicy`` with kubelet's doubling back-off
(10 s .. 5 min), counted in ``restartCount``. Stopping a container runs its preStop hook
(:mod:`harness.nodeagent.hooks`), then sends SIGTERM to its first process only, as a
runtime does, SIGKILL when ``terminationGracePeriodSeconds`` is over; the rest of its process
group is killed when that process ends, by itself or not (:func:`~harness.nodeagent.childproc
.stop_container`). The pod's end removes its namespace and volumes; a pod that ran to an end
(Succeeded, Failed) keeps its logs for ``kubectl logs`` until it is deleted.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness.nodeagent import hooks, mounts
from harness.nodeagent.childproc import (
    container_ended,
    die_with_parent,
    run_env,
    stop_container,
)
from harness.nodeagent.downward import FieldError, field_value, resource_value
from harness.nodeagent.imageenv import ImageEnvError
from harness.nodeagent.images import Image, interpreter, needs_pull
from harness.nodeagent.logs import NoLog
from harness.nodeagent.network import Network, PodNet
from harness.nodeagent.serviceenv import hostname_and_domain, managed_hosts, service_env
from harness.nodeagent.volumes import PodVolumes, VolumeError
from harness.objects import format_time

PROBE_AGENT = "kube-probe/1.34"
BACKOFF_S = (10.0, 20.0, 40.0, 80.0, 160.0, 300.0)


class EnvError(RuntimeError):
    """A referenced ConfigMap/Secret key is missing (kubelet's CreateContainerConfigError)."""


@dataclass
class Container:
    spec: dict[str, Any]
    image: Image
    log: Path               # this instance's log (``<pod dir>/<name>/<n>.log``, as kubelet)
    proc: subprocess.Popen[bytes] | None = None
    previous: Path | None = None   # the previous instance's log, for ``--previous``
    instance: int = 0
    env: dict[str, str] = field(default_factory=dict)
    restarts: int = 0
    ready: bool = False
    started_at: str = ""
    t0: float = 0.0
    last_exit: dict[str, Any] | None = None
    next_start: float = 0.0
    probe_due: dict[str, float] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    successes: dict[str, int] = field(default_factory=dict)


class PodRunner:
    """One pod's processes and status (see the module docstring)."""

    def __init__(self, pod: dict[str, Any], images: dict[str, Image], *,
                 client: httpx.Client, network: Network, logs: Path, run_id: str,
                 host_ip: str, on_gone: Callable[[str], None]) -> None:
        self.pod = pod
        self.uid = pod["metadata"]["uid"]
        self.ns = pod["metadata"]["namespace"]
        self.name = pod["metadata"]["name"]
        self.key = f"{self.ns}/{self.name}"
        self.images = images
        self.client = client
        self.network = network
        self.dir = logs / self.ns / f"{self.name}_{self.uid}"
        self.run_id = run_id
        self.host_ip = host_ip
        self.on_gone = on_gone
        self.net: PodNet | None = None
        self.containers: dict[str, Container] = {}
        # kubelet: a pod without init containers is Initialized from its first status
        # (its containers wait as ContainerCreating, not PodInitializing)
        self.init_done = not pod["spec"].get("initContainers")
        self.init_statuses: list[dict[str, Any]] = []
        self.terminating = threading.Event()
        self.grace_s = float(pod["spec"].get("terminationGracePeriodSeconds", 30))
        self._thread = threading.Thread(target=self._main, name=f"pod {self.key}",
                                        daemon=True)
        self._reported: Any = None
        self.start_time = format_time()
        self.volumes: PodVolumes | None = None
        self.finished = False   # reported Succeeded or Failed

    def start(self) -> PodRunner:
        self._thread.start()
        return self

    def terminate(self, grace_s: float | None = None) -> None:
        if grace_s is not None:
            self.grace_s = min(self.grace_s, grace_s)
        self.terminating.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def log_source(self, container: str,
                   previous: bool = False) -> tuple[Path, Callable[[], bool]]:
        """(log file, whether it may still grow) of the container's current or previous
        instance; :class:`~harness.nodeagent.logs.NoLog` with kubelet's words if none."""
        c = self.containers.get(container)
        names = [s["name"] for s in [*self.pod["spec"]["containers"],
                                     *(self.pod["spec"].get("initContainers") or [])]]
        if container not in names:
            raise NoLog(f'container "{container}" in pod "{self.name}" is not available')
        if previous:
            if c is None or c.previous is None or not c.previous.exists():
                raise NoLog(f'previous terminated container "{container}" in pod '
                            f'"{self.name}" not found')
            return c.previous, lambda: False
        if c is None or not c.log.exists():
            reason = "ContainerCreating" if self.init_done else "PodInitializing"
            raise NoLog(f'container "{container}" in pod "{self.name}" is waiting to start: '
                        f"{reason}")
        log = c.log
        return log, lambda: c.log == log and c.proc is not None and \
            c.proc.returncode is None and not self.terminating.is_set()

    # ------------------------------------------------------------ main loop

    def _main(self) -> None:
        try:
            self._status()   # kubelet reports the pod before it makes the sandbox
            self.net = self.network.add_pod(
                self.key, self.ns, hosts=lambda ip: managed_hosts(self.pod, [ip]))
            self.dir.mkdir(parents=True, exist_ok=True)
            self.volumes = PodVolumes(self.pod, self.dir / "volumes", self.client,
                                      run_id=self.run_id, host_ip=self.host_ip,
                                      pod_ip=self.net.address)
            self._status()
            self._pull()
            if self._mount_volumes() and self._run_inits():
                self._run_containers()
        except Exception as exc:  # noqa: BLE001 - reported on the pod
            self._post_event("Warning", "Failed", f"node agent: {exc}")
        finally:
            self._stop_all()
            if self.volumes is not None:
                self.volumes.teardown()
            self.network.remove_pod(self.key)
            if self.finished:
                # Succeeded or Failed: its containers' logs stay for 'kubectl logs' (and
                # its status as reported) until the pod is deleted, as on a kubelet
                self.terminating.wait()
            self.on_gone(self.uid)

    def _mount_volumes(self) -> bool:
        """Every volume set up before any container starts; a failure is kubelet's
        ``FailedMount`` event, retried with back-off while the pod stays Pending."""
        assert self.volumes is not None
        delay, last = 1.0, ""
        while not self.terminating.is_set():
            try:
                self.volumes.setup()
                return True
            except VolumeError as exc:
                if str(exc) != last:
                    self._post_event("Warning", "FailedMount", str(exc))
                    last = str(exc)
            if self.terminating.wait(delay):
                return False
            delay = min(delay * 2, 8.0)
        return False

    def _env(self, spec: dict[str, Any], image: Image) -> dict[str, str]:
        assert self.net is not None
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOSTNAME": self.name,
               "HOME": str(self.dir), **image.env, **self._service_env()}
        for item in spec.get("env") or []:
            if "value" in item or not item.get("valueFrom"):
                # an empty value is no key at all in the JSON (Go's omitempty): still set
                env[item["name"]] = str(item.get("value", ""))
                continue
            source = item.get("valueFrom") or {}
            try:
                if "fieldRef" in source:
                    env[item["name"]] = field_value(
                        self.pod, source["fieldRef"]["fieldPath"], pod_ip=self.net.address,
                        host_ip=self.host_ip)
                    continue
                if "resourceFieldRef" in source:
                    ref = source["resourceFieldRef"]
                    assert self.volumes is not None
                    env[item["name"]] = resource_value(
                        spec, ref["resource"], ref.get("divisor"),
                        self.volumes.node_allocatable())
                    continue
            except FieldError as exc:
                raise EnvError(str(exc)) from None
            if "configMapKeyRef" in source or "secretKeyRef" in source:
                value = self._key_ref(source)
                if value is not None:
                    env[item["name"]] = value
        return env

    def _service_env(self) -> dict[str, str]:
        """The Service variables kubelet sets (:mod:`harness.nodeagent.serviceenv`): the
        ``kubernetes`` Service's always, the namespace's Services' with
        ``enableServiceLinks`` (default true), as they are when the container starts."""
        links = self.pod["spec"].get("enableServiceLinks", True) is not False
        services: list[dict[str, Any]] = []
        if links:
            r = self.client.get(f"/api/v1/namespaces/{self.ns}/services")
            if r.status_code == 200:
                services = r.json().get("items") or []
        return service_env(services, enable_service_links=links)

    def _key_ref(self, source: dict[str, Any]) -> str | None:
        import base64

        secret = "secretKeyRef" in source
        ref = source["secretKeyRef" if secret else "configMapKeyRef"]
        kind = "secrets" if secret else "configmaps"
        r = self.client.get(f"/api/v1/namespaces/{self.ns}/{kind}/{ref['name']}")
        data = r.json().get("data") or {} if r.status_code == 200 else None
        if data is None or ref["key"] not in data:
            if ref.get("optional"):
                return None
            what = "secret" if secret else "configmap"
            raise EnvError(f"couldn't find key {ref['key']} in {what} "
                           f"{self.ns}/{ref['name']}")
        value = data[ref["key"]]
        return base64.b64decode(value).decode() if secret else str(value)

    def _argv(self, spec: dict[str, Any], image: Image, env: dict[str, str]) -> list[str]:
        """``ip netns exec <pod's namespace>``, the mount setup when the container has
        volume mounts or a workingDir (:mod:`harness.nodeagent.mounts`), the command."""
        argv = [mounts.expand(a, env)
                for a in image.argv(spec.get("command"), spec.get("args"))]
        if argv and argv[0] == "python":
            argv[0] = interpreter(image)
        assert self.net is not None and self.volumes is not None
        try:
            planned = mounts.plan(spec, self.volumes.dirs, env)
        except mounts.MountError as exc:
            raise EnvError(str(exc)) from None
        if planned or spec.get("workingDir"):
            plan = mounts.write_plan(self.dir / f"{spec['name']}.mounts.json", planned,
                                     spec.get("workingDir"))
            argv = mounts.wrap(argv, plan)
        # the pod's own UTS namespace with the pod's name as host name, as kubelet gives
        # it (software that names itself by gethostname(), e.g. the model server's
        # X-Pod-Name without POD_NAME); unshare and sh exec, so the pid stays the command's
        hostname, _domain = hostname_and_domain(self.pod)
        return ["ip", "netns", "exec", self.net.netns, "unshare", "--uts", "--",
                "sh", "-c", 'hostname "$0" && exec "$@"', hostname, *argv]

    def _spawn(self, c: Container) -> subprocess.Popen[bytes]:
        """Start a new instance of ``c``, logging to a fresh ``<n>.log`` (the last one
        kept as the previous instance's)."""
        env = self._env(c.spec, c.image)
        argv = self._argv(c.spec, c.image, env)
        env.update(run_env(self.run_id))
        c.env = env
        folder = self.dir / c.spec["name"]
        folder.mkdir(parents=True, exist_ok=True)
        if c.log.exists():
            if c.previous is not None:
                c.previous.unlink(missing_ok=True)
            c.previous = c.log
            c.instance += 1
        c.log = folder / f"{c.instance}.log"
        with open(c.log, "ab") as out:
            return subprocess.Popen(argv, cwd=c.image.cwd, env=env,
                                    stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=die_with_parent)

    def _pull(self) -> None:
        """Build the Python environments the pod's images need first (kubelet's
        ``Pulling``/``Pulled`` events; a failed build is its ``Failed`` one)."""
        spec = self.pod["spec"]
        done: set[str] = set()
        for c in [*(spec.get("initContainers") or []), *spec["containers"]]:
            image = self.images[c["name"]]
            if image.name in done or not needs_pull(image):
                continue
            done.add(image.name)
            self._post_event("Normal", "Pulling", f'Pulling image "{c["image"]}"')
            t0 = time.monotonic()
            try:
                interpreter(image)
            except ImageEnvError as exc:
                self._post_event("Warning", "Failed",
                                 f'Failed to pull image "{c["image"]}": {exc}')
                raise
            took = f"{time.monotonic() - t0:.3f}s"
            self._post_event("Normal", "Pulled", f'Successfully pulled image "{c["image"]}" '
                                                 f"in {took} ({took} including waiting)")

    def _run_inits(self) -> bool:
        for spec in self.pod["spec"].get("initContainers") or []:
            c = Container(spec, self.images[spec["name"]], self.dir / spec["name"] / "0.log")
            self.containers[spec["name"]] = c
            attempt = 0
            last: dict[str, Any] = {}   # kubelet's lastState: the previous instance's end
            while not self.terminating.is_set():
                started = format_time()
                try:
                    c.proc = proc = self._spawn(c)
                except EnvError as exc:
                    self._post_event("Warning", "Failed", f"Error: {exc}")
                    return False
                self._set_init_status({"name": spec["name"], "image": spec["image"],
                                       "imageID": "", "ready": False, "restartCount": attempt,
                                       "started": True, "lastState": last,
                                       "state": {"running": {"startedAt": started}}})
                self._status()
                while not container_ended(proc) and not self.terminating.wait(0.2):
                    pass
                if self.terminating.is_set():
                    return False
                code = proc.wait()
                term = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                        "startedAt": started, "finishedAt": format_time()}
                status = {"name": spec["name"], "image": spec["image"], "imageID": "",
                          "ready": code == 0, "restartCount": attempt,
                          "started": False, "state": {"terminated": term},
                          "lastState": last}
                self._set_init_status(status)
                last = {"terminated": term}
                if code == 0:
                    break
                attempt += 1
                if self.pod["spec"].get("restartPolicy", "Always") == "Never":
                    self._status(phase="Failed")
                    return False
                self._status()
                if self.terminating.wait(BACKOFF_S[min(attempt - 1, len(BACKOFF_S) - 1)]):
                    return False
        self.init_done = True
        return not self.terminating.is_set()

    def _set_init_status(self, status: dict[str, Any]) -> None:
        self.init_statuses = [s for s in self.init_statuses
                              if s["name"] != status["name"]] + [status]

    def _run_containers(self) -> None:
        policy = self.pod["spec"].get("restartPolicy", "Always")
        for spec in self.pod["spec"]["containers"]:
            self.containers[spec["name"]] = Container(
                spec, self.images[spec["name"]], self.dir / spec["name"] / "0.log")
        while not self.terminating.is_set():
            t = time.monotonic()
            if self.volumes is not None:
                for error in self.volumes.sync():
                    self._post_event("Warning", "FailedMount", f"MountVolume.SetUp failed "
                                     f"for {error}")
            for c in self._mains():
                if c.proc is None:
                    again = c.last_exit is None or policy == "Always" or (
                        policy == "OnFailure" and c.last_exit["exitCode"] != 0)
                    if again and t >= c.next_start:
                        self._start_container(c)
                elif container_ended(c.proc):
                    self._container_exited(c, policy)
                else:
                    self._probe(c)
            if self._all_done(policy):
                self._status(phase="Succeeded" if all(
                    c.last_exit and c.last_exit["exitCode"] == 0
                    for c in self._mains()) else "Failed")
                return
            self._status()
            self.terminating.wait(0.5)

    def _mains(self) -> list[Container]:
        names = {c["name"] for c in self.pod["spec"]["containers"]}
        return [c for n, c in self.containers.items() if n in names]

    def _all_done(self, policy: str) -> bool:
        mains = self._mains()
        if policy == "Always" or any(c.proc is not None or c.last_exit is None for c in mains):
            return False
        return policy == "Never" or all(c.last_exit["exitCode"] == 0 for c in mains)

    def _start_container(self, c: Container) -> None:
        try:
            c.proc = self._spawn(c)
        except EnvError as exc:
            self._post_event("Warning", "Failed", f"Error: {exc}")
            c.next_start = time.monotonic() + BACKOFF_S[0]
            return
        c.started_at = format_time()
        c.t0 = time.monotonic()
        c.ready = not c.spec.get("readinessProbe")
        c.probe_due = {}
        c.failures, c.successes = {}, {}
        self._post_event("Normal", "Started", f"Started container {c.spec['name']}")
        post_start = (c.spec.get("lifecycle") or {}).get("postStart")
        if post_start:
            error = self._hook(c, post_start, self.grace_s)
            if error is not None:
                # kubelet: the event without the message (it may hold secrets), then the
                # container is killed and restarted per its policy
                self._post_event("Warning", "FailedPostStartHook", "PostStartHook failed")
                self._kill(c, self.grace_s, run_pre_stop=False)

    def _hook(self, c: Container, handler: dict[str, Any], timeout: float) -> str | None:
        assert self.net is not None and c.proc is not None
        # the mount setup is short but not instant on a loaded machine: wait for it apart
        # from the hook's own time
        hooks.wait_for_command(c.proc.pid, timeout=30.0)
        return hooks.run_handler(handler, pid=c.proc.pid, env=c.env, pod_ip=self.net.address,
                                 port_of=self._port, timeout=timeout)

    def _container_exited(self, c: Container, policy: str) -> None:
        assert c.proc is not None
        code = c.proc.wait()
        c.last_exit = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                       "startedAt": c.started_at, "finishedAt": format_time()}
        c.proc, c.ready = None, False
        if policy == "Always" or (policy == "OnFailure" and code != 0):
            delay = BACKOFF_S[min(c.restarts, len(BACKOFF_S) - 1)]
            c.restarts += 1
            c.next_start = time.monotonic() + delay
            self._post_event("Warning", "BackOff",
                             f"Back-off restarting failed container {c.spec['name']} in pod "
                             f"{self.name}_{self.ns}({self.uid})")

    # ------------------------------------------------------------ probes

    def _probe(self, c: Container) -> None:
        if c.proc is None or not hooks.runs_command(c.proc.pid):
            return   # still in its mount setup: probes start with the container's command
        t = time.monotonic()
        started = c.t0
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = c.spec.get(kind)
            if not probe:
                continue
            if kind != "startupProbe" and c.spec.get("startupProbe") and \
                    c.successes.get("startupProbe", 0) == 0:
                continue
            if kind == "startupProbe" and c.successes.get(kind, 0) > 0:
                continue
            due = c.probe_due.get(kind, started + float(probe.get("initialDelaySeconds", 0)))
            if t < due:
                continue
            c.probe_due[kind] = t + float(probe.get("periodSeconds", 10))
            ok = self._check(probe, c)
            if ok:
                c.successes[kind] = c.successes.get(kind, 0) + 1
                c.failures[kind] = 0
                if kind == "readinessProbe" and \
                        c.successes[kind] >= int(probe.get("successThreshold", 1)):
                    c.ready = True
            else:
                c.failures[kind] = c.failures.get(kind, 0) + 1
                c.successes[kind] = 0
                if c.failures[kind] >= int(probe.get("failureThreshold", 3)):
                    if kind == "readinessProbe":
                        c.ready = False
                    else:
                        self._post_event("Normal", "Killing",
                                         f"Container {c.spec['name']} failed {kind[:-5]} "
                                         "probe, will be restarted")
                        self._kill(c, float(self.grace_s))

    def _check(self, probe: dict[str, Any], c: Container) -> bool:
        assert self.net is not None
        timeout = float(probe.get("timeoutSeconds", 1))
        if "httpGet" in probe:
            g = probe["httpGet"]
            port = self._port(g.get("port", 80))
            headers = {"User-Agent": PROBE_AGENT, "Accept": "*/*"}
            for h in g.get("httpHeaders") or []:
                headers[h["name"]] = h["value"]
            url = f"{g.get('scheme', 'HTTP').lower()}://{self.net.address}:{port}" \
                  f"{g.get('path', '/')}"
            try:
                r = httpx.get(url, headers=headers, timeout=timeout, verify=False)
            except httpx.HTTPError:
                return False
            return 200 <= r.status_code < 400
        if "tcpSocket" in probe:
            port = self._port(probe["tcpSocket"]["port"])
            try:
                with socket.create_connection((self.net.address, port), timeout=timeout):
                    return True
            except OSError:
                return False
        if "exec" in probe:
            if c.proc is None:
                return False
            return hooks.run_exec(c.proc.pid, list(probe["exec"]["command"]), c.env,
                                  timeout)[0]
        return True

    def _port(self, port: int | str) -> int:
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for c in self.pod["spec"]["containers"]:
            for p in c.get("ports") or []:
                if p.get("name") == port:
                    return int(p["containerPort"])
        return 0

    # ------------------------------------------------------------ stop

    def _kill(self, c: Container, grace_s: float, run_pre_stop: bool = True) -> None:
        """Kubelet's ``killContainer``: the preStop hook first (within the grace period,
        ``FailedPreStopHook`` when it fails), then SIGTERM with what is left of the grace
        period (at least 2 s), then SIGKILL."""
        proc = c.proc
        if proc is None or container_ended(proc):
            return
        pre_stop = (c.spec.get("lifecycle") or {}).get("preStop")
        if run_pre_stop and pre_stop and grace_s > 0:
            started = time.monotonic()
            done = threading.Event()

            def run() -> None:
                if self._hook(c, pre_stop, grace_s) is not None:
                    self._post_event("Warning", "FailedPreStopHook", "PreStopHook failed")
                done.set()
            threading.Thread(target=run, name=f"preStop {self.key}/{c.spec['name']}",
                             daemon=True).start()
            done.wait(grace_s)
            grace_s = hooks.grace_after_prestop(grace_s, int(time.monotonic() - started))
        stop_container(proc, grace_s)

    def _stop_all(self) -> None:
        for c in self.containers.values():
            if c.proc is not None and c.proc.returncode is None:
                self._post_event("Normal", "Killing", f"Stopping container {c.spec['name']}")
        threads = [threading.Thread(target=self._kill, args=(c, self.grace_s), daemon=True)
                   for c in self.containers.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    # ------------------------------------------------------------ reporting

    def _status(self, phase: str | None = None) -> None:
        mains = self._mains()
        statuses = []
        for spec in self.pod["spec"]["containers"]:
            c = self.containers.get(spec["name"])
            state: dict[str, Any]
            if c is None or (c.proc is None and c.last_exit is None):
                state = {"waiting": {"reason": "PodInitializing" if not self.init_done
                                     else "ContainerCreating"}}
            elif c.proc is not None:
                state = {"running": {"startedAt": c.started_at}}
            elif phase is not None:
                state = {"terminated": c.last_exit}
            else:
                state = {"waiting": {"reason": "CrashLoopBackOff",
                                     "message": f"back-off restarting failed container "
                                                f"{spec['name']}"}}
            statuses.append({
                "name": spec["name"], "image": spec["image"], "imageID": "",
                "ready": bool(c and c.proc is not None and c.ready),
                "restartCount": c.restarts if c else 0,
                "started": bool(c and c.proc is not None), "state": state,
                "lastState": {"terminated": c.last_exit} if c and c.last_exit else {}})
        ready = bool(mains) and all(s["ready"] for s in statuses)
        unready = [s["name"] for s in statuses if not s["ready"]]
        inits = [c["name"] for c in self.pod["spec"].get("initContainers") or []]
        if phase is None:
            phase = "Running" if any(c.proc is not None for c in mains) else "Pending"
        self.finished = phase in ("Succeeded", "Failed")
        conds = {
            "PodReadyToStartContainers": (self.net is not None, None, None),
            "Initialized": (self.init_done, "ContainersNotInitialized",
                            f"containers with incomplete status: [{' '.join(inits)}]"),
            "ContainersReady": (ready, "ContainersNotReady",
                                f"containers with unready status: [{' '.join(unready)}]"),
            "Ready": (ready, "ContainersNotReady",
                      f"containers with unready status: [{' '.join(unready)}]"),
        }
        status: dict[str, Any] = {
            "phase": phase, "hostIP": self.host_ip, "hostIPs": [{"ip": self.host_ip}],
            "startTime": self.start_time, "containerStatuses": statuses,
        }
        if self.net is not None:
            status.update(podIP=self.net.address, podIPs=[{"ip": self.net.address}])
        if self.init_statuses:
            status["initContainerStatuses"] = self.init_statuses
        key = (phase, self.net is not None,
               [(s["name"], s["ready"], s["restartCount"], list(s["state"]))
                       for s in statuses],
               [(s["name"], s["restartCount"], json.dumps(s["state"], sort_keys=True))
                for s in self.init_statuses], self.init_done)
        if key == self._reported:
            return
        conditions = []
        old = {c["type"]: c for c in self.pod.get("status", {}).get("conditions", [])}
        for t, (ok, reason, message) in conds.items():
            was = old.get(t)
            changed = was is None or was.get("status") != ("True" if ok else "False")
            cond: dict[str, Any] = {"type": t, "status": "True" if ok else "False",
                                    "lastProbeTime": None,
                                    "lastTransitionTime": format_time() if changed else
                                    was.get("lastTransitionTime")}
            if not ok and reason:
                cond.update(reason=reason, message=message)
            conditions.append(cond)
            old[t] = cond
        self.pod.setdefault("status", {})["conditions"] = conditions
        status["conditions"] = conditions
        r = self.client.patch(
            f"/api/v1/namespaces/{self.ns}/pods/{self.name}/status",
            json={"metadata": {"uid": self.uid}, "status": status},
            headers={"Content-Type": "application/strategic-merge-patch+json"})
        if r.status_code == 200:
            self._reported = key

    def _post_event(self, type_: str, reason: str, message: str) -> None:
        t = format_time()
        self.client.post(f"/api/v1/namespaces/{self.ns}/events", json={
            "metadata": {"generateName": f"{self.name}.", "namespace": self.ns},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": self.name,
                               "namespace": self.ns, "uid": self.uid},
            "reason": reason, "message": message, "type": type_,
            "source": {"component": "kubelet", "host": self.pod["spec"]["nodeName"]},
            "reportingComponent": "kubelet", "reportingInstance": self.pod["spec"]["nodeName"],
            "firstTimestamp": t, "lastTimestamp": t, "count": 1})
