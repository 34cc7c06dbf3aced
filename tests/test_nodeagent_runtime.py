"""The node agent's runtime without a cluster: a pod runs as a real process in its own
network namespace on the run's bridge, its readiness probe (kubelet's user agent) turns it
Ready, env from fieldRef/configMapKeyRef is resolved, a crash is restarted and counted, and
stopping leaves no process, namespace or link. The API is a recording fake (httpx)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.nodeagent import network as netmod
from harness.nodeagent.images import load_table, resolve
from harness.nodeagent.runtime import PodRunner

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0 or not shutil.which("ip"),
    reason="network namespaces need Linux, root and iproute2")


class FakeApi:
    def __init__(self) -> None:
        self.statuses: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.services: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def handler(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            if request.url.path.endswith("/status"):
                self.statuses.append(json.loads(request.content)["status"])
                return httpx.Response(200, json={})
            if request.url.path.endswith("/events"):
                self.events.append(json.loads(request.content))
                return httpx.Response(201, json={})
            if "/configmaps/settings" in request.url.path:
                return httpx.Response(200, json={"data": {"greeting": "hello"}})
            if request.url.path == "/api/v1/namespaces/ns1/services":
                return httpx.Response(200, json={"items": self.services})
        return httpx.Response(404, json={})

    def last(self) -> dict[str, Any]:
        with self.lock:
            return self.statuses[-1] if self.statuses else {}


def _pod(image: str, **container: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p1", "namespace": "ns1", "uid": secrets.token_hex(8),
                         "labels": {"app": "x"}},
            "spec": {"nodeName": "cpu-1", "terminationGracePeriodSeconds": 3,
                     "containers": [{"name": "main", "image": image, **container}]},
            "status": {}}


def _until(what: str, check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out: {what}")


@pytest.fixture
def net() -> Any:
    run = secrets.token_hex(3)
    n = netmod.Network(run)
    try:
        n.setup()
    except netmod.NetworkBusy as exc:  # a live cluster or another test run on this host
        pytest.skip(str(exc))
    yield n
    n.teardown()
    assert netmod.run_netns(run) == [] and netmod.bridge_name(run) not in netmod.run_bridges()


def test_model_server_pod_runs_in_its_namespace_and_turns_ready(net: Any,
                                                                tmp_path: Path) -> None:
    api = FakeApi()
    table = load_table()
    pod = _pod("harness-modelserver:0.1.0", ports=[{"name": "http", "containerPort": 8080}],
               env=[{"name": "POD_NAME", "valueFrom": {"fieldRef": {
                   "fieldPath": "metadata.name"}}},
                    {"name": "GREETING", "valueFrom": {"configMapKeyRef": {
                        "name": "settings", "key": "greeting"}}},
                    {"name": "EMPTY"}],   # value "" is no key in Go's JSON (omitempty)
               readinessProbe={"httpGet": {"path": "/v2/health/ready", "port": "http"},
                               "periodSeconds": 1})
    gone = threading.Event()
    runner = PodRunner(pod, {"main": resolve(table, "harness-modelserver:0.1.0")},
                       client=httpx.Client(transport=httpx.MockTransport(api.handler),
                                           base_url="https://api"),
                       network=net, logs=tmp_path, run_id=net.run_id, host_ip="127.0.0.1",
                       on_gone=lambda uid: gone.set()).start()
    try:
        status = _until("Ready", lambda: api.last() if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in api.last().get("conditions", [])) else None)
        ip = status["podIP"]
        assert ip.startswith("198.18.") and status["phase"] == "Running"
        # kubelet: no init containers, so Initialized from the first status on, and the
        # container waits as ContainerCreating (not PodInitializing) until it runs
        first = api.statuses[0]
        conds = {c["type"]: c["status"] for c in first["conditions"]}
        assert conds["Initialized"] == "True"
        # ... and reported before its sandbox (network namespace) exists, as kubelet does
        assert conds["PodReadyToStartContainers"] == "False" and "podIP" not in first
        assert first["containerStatuses"][0]["state"] == {
            "waiting": {"reason": "ContainerCreating"}}
        r = httpx.get(f"http://{ip}:8080/", timeout=5)
        assert r.headers["X-Pod-Name"] == "p1"
        proc = runner.containers["main"].proc
        assert proc is not None
        env = dict(i.split("=", 1) for i in Path(f"/proc/{proc.pid}/environ").read_text()
                   .split("\0") if "=" in i)
        assert env["GREETING"] == "hello" and env["HARNESS_UPSTREAM_RUN"] == net.run_id
        assert env["EMPTY"] == ""   # set, as kubelet does (Knative's queue-proxy needs it)
        assert os.readlink(f"/proc/{proc.pid}/ns/uts") != os.readlink("/proc/self/ns/uts")
        uts = subprocess.run(["nsenter", "-t", str(proc.pid), "-u", "hostname"],
                             capture_output=True, text=True).stdout.strip()
        assert uts == "p1"   # the pod's name, as kubelet sets it
        assert "python" in Path(f"/proc/{proc.pid}/cmdline").read_text()  # exec'd, same pid
        netns = os.readlink(f"/proc/{proc.pid}/ns/net")
        assert netns != os.readlink("/proc/self/ns/net")
        pod_ns = net.pods["ns1/p1"].netns
        resolv = Path(f"/etc/netns/{pod_ns}/resolv.conf").read_text()
        assert "nameserver 198.19.0.10" in resolv and "search ns1.svc.cluster.local" in resolv
        routes = subprocess.run(["ip", "-n", pod_ns, "route"], capture_output=True,
                                text=True).stdout
        assert "default" not in routes and "198.19.0.0/16 via 198.18.0.1" in routes
        # a crash: restarted (after kubelet's first 10 s back-off) and counted
        runner.containers["main"].proc.kill()
        _until("restart counted", lambda: api.last()["containerStatuses"][0]["restartCount"]
               == 1 and api.last()["containerStatuses"][0]["ready"], timeout=40)
        assert any(e["reason"] == "BackOff" for e in api.events)
    finally:
        runner.terminate()
        runner.join(20)
    assert gone.is_set()
    assert runner.containers["main"].proc is None or \
        runner.containers["main"].proc.poll() is not None
    assert net.pods == {}
    assert not Path(f"/etc/netns/{pod_ns}").exists()


def test_volumes_shared_by_init_and_main_prestop_before_term_and_previous_logs(
        net: Any, tmp_path: Path) -> None:
    """An init container writes an emptyDir the main container reads at its mountPath; a
    ConfigMap key appears by subPath; the postStart hook runs inside the container; a crash
    keeps the previous instance's log; stopping runs the exec preStop hook inside the
    container (it sees the volumes) before SIGTERM."""
    from harness.nodeagent.logs import NoLog

    api = FakeApi()
    out = tmp_path / "out"
    out.mkdir()
    table = load_table()
    script = ("trap 'echo term >> /out/order; exit 0' TERM; cat /work/greeting; echo; "
              "cat /etc/greeting.txt; echo; echo run >> /out/runs; "
              "while :; do sleep 0.1; done")
    pod = _pod(PAUSE_IMAGE, command=["sh", "-c", script],
               volumeMounts=[{"name": "work", "mountPath": "/work"},
                             {"name": "settings", "mountPath": "/etc/greeting.txt",
                              "subPath": "greeting"},
                             {"name": "out", "mountPath": "/out"}],
               lifecycle={"preStop": {"exec": {"command": [
                   "sh", "-c", "cat /work/greeting > /out/order; echo ' prestop' >> /out/order"]}},
                   "postStart": {"exec": {"command": ["sh", "-c", "ls /work > /out/poststart"]}}})
    pod["spec"]["initContainers"] = [{
        "name": "init", "image": PAUSE_IMAGE, "command": ["sh", "-c", "echo -n from-init > "
                                                          "/work/greeting"],
        "volumeMounts": [{"name": "work", "mountPath": "/work"}]}]
    pod["spec"]["volumes"] = [{"name": "work", "emptyDir": {}},
                              {"name": "settings", "configMap": {"name": "settings"}},
                              {"name": "out", "hostPath": {"path": str(out)}}]
    images = {"main": resolve(table, PAUSE_IMAGE), "init": resolve(table, PAUSE_IMAGE)}
    runner = PodRunner(pod, images, client=httpx.Client(
        transport=httpx.MockTransport(api.handler), base_url="https://api"),
        network=net, logs=tmp_path / "pods", run_id=net.run_id, host_ip="127.0.0.1",
        on_gone=lambda uid: None).start()
    try:
        _until("main running", lambda: (out / "runs").exists())
        log, _running = runner.log_source("main")
        _until("main's output", lambda: "hello" in log.read_text())
        assert [e for e in api.events if e["reason"].startswith("Failed")] == []
        assert log.read_text() == "from-init\nhello\n"
        # the init container is reported running, then terminated; Initialized only then
        # (the status after the main container's start can follow its first output: the
        # postStart hook runs in between)
        _until("the init container reported terminated", lambda: any(
            "terminated" in (s.get("initContainerStatuses") or [{"state": {}}])[0]["state"]
            for s in list(api.statuses)))
        with api.lock:
            seen = [(s["initContainerStatuses"][0]["state"].keys() if
                     s.get("initContainerStatuses") else set(),
                     {c["type"]: c["status"] for c in s["conditions"]}["Initialized"])
                    for s in api.statuses]
        states = [(next(iter(k), "none"), init) for k, init in seen]
        assert states[0] == ("none", "False")
        assert ("running", "False") in states and ("terminated", "True") in states
        assert states.index(("running", "False")) < states.index(("terminated", "True"))
        assert first_waiting_reason(api.statuses[0]) == "PodInitializing"
        with pytest.raises(NoLog, match='previous terminated container "main" in pod "p1"'):
            runner.log_source("main", previous=True)
        volume = runner.volumes.dirs["work"]
        assert volume.is_relative_to(tmp_path / "pods")
        runner.containers["main"].proc.kill()
        _until("restarted", lambda: (out / "runs").read_text() == "run\nrun\n", timeout=40)
        previous, running = runner.log_source("main", previous=True)
        assert previous.read_text() == "from-init\nhello\n" and not running()
    finally:
        runner.terminate()
        runner.join(20)
    assert (out / "order").read_text() == "from-init prestop\nterm\n"
    assert (out / "poststart").read_text() == "greeting\n"
    assert not volume.exists()                 # the pod's volumes go with it
    assert not any(e["reason"] == "FailedPreStopHook" for e in api.events)
    assert any(e["reason"] == "Killing" and e["message"] == "Stopping container main"
               for e in api.events)


PAUSE_IMAGE = "registry.k8s.io/pause:3.10"


def first_waiting_reason(status: dict[str, Any]) -> str:
    return status["containerStatuses"][0]["state"]["waiting"]["reason"]


def test_a_removed_pod_takes_its_veth_even_while_its_namespace_lives_on(net: Any) -> None:
    """A process left in a pod's namespace keeps the namespace (and its veth pair) alive
    after ``ip netns del``; removing the pod must still take the host end, or the link is
    left behind and the next pod given that address cannot be made."""
    pod = net.add_pod("ns1/lingering")
    holder = subprocess.Popen(["ip", "netns", "exec", pod.netns, "sleep", "60"])
    try:
        _until("the holder runs in the namespace", lambda: subprocess.run(
            ["ip", "netns", "pids", pod.netns], capture_output=True, text=True).stdout.strip())
        net.remove_pod("ns1/lingering")
        assert pod.veth not in netmod.run_links(net.run_id)
        again = net.add_pod("ns1/next")      # the freed address and names, made anew
        assert again.veth == pod.veth
        net.remove_pod("ns1/next")
    finally:
        holder.kill()
        holder.wait()
    assert netmod.run_links(net.run_id) == []


def _runner(pod: dict[str, Any], api: FakeApi, net: Any, tmp_path: Path,
            gone: threading.Event | None = None) -> PodRunner:
    table = load_table()
    names = [c["name"] for c in [*pod["spec"]["containers"],
                                 *(pod["spec"].get("initContainers") or [])]]
    return PodRunner(pod, {n: resolve(table, PAUSE_IMAGE) for n in names},
                     client=httpx.Client(transport=httpx.MockTransport(api.handler),
                                         base_url="https://api"),
                     network=net, logs=tmp_path / "pods", run_id=net.run_id,
                     host_ip="127.0.0.1",
                     on_gone=lambda uid: gone.set() if gone is not None else None).start()


@pytest.mark.parametrize("links", [True, False], ids=["service-links", "no-service-links"])
def test_service_variables_and_the_managed_hosts_file(net: Any, tmp_path: Path,
                                                      links: bool) -> None:
    """The namespace's Services as kubelet's variables (``enableServiceLinks``, default
    true; the ``kubernetes`` Service's always) and kubelet's ``/etc/hosts`` with the pod's
    address and name, seen from inside the container."""
    from harness.nodeagent.serviceenv import managed_hosts

    api = FakeApi()
    api.services = [{"metadata": {"name": "web-svc", "namespace": "ns1"},
                     "spec": {"clusterIP": "198.19.0.7", "ports": [
                         {"name": "http", "port": 80, "protocol": "TCP"}]}}]
    out = tmp_path / "out"
    out.mkdir()
    pod = _pod(PAUSE_IMAGE, command=["sh", "-c", "env > /out/env; cat /etc/hosts > "
                                     "/out/hosts; while :; do sleep 0.1; done"],
               volumeMounts=[{"name": "out", "mountPath": "/out"}])
    pod["spec"]["volumes"] = [{"name": "out", "hostPath": {"path": str(out)}}]
    pod["spec"]["hostAliases"] = [{"ip": "127.0.0.1", "hostnames": ["foo.local"]}]
    if not links:
        pod["spec"]["enableServiceLinks"] = False
    runner = _runner(pod, api, net, tmp_path)
    try:
        _until("the container's env and hosts", lambda: (out / "hosts").exists()
               and (out / "hosts").read_text())
        env = dict(line.split("=", 1) for line in (out / "env").read_text().splitlines()
                   if "=" in line)
        ip = net.pods["ns1/p1"].address
    finally:
        runner.terminate()
        runner.join(20)
    assert env["KUBERNETES_SERVICE_HOST"] == "198.19.0.1"
    assert env["KUBERNETES_PORT_443_TCP"] == "tcp://198.19.0.1:443"
    web = {k: v for k, v in env.items() if k.startswith("WEB_SVC_")}
    assert web == ({"WEB_SVC_SERVICE_HOST": "198.19.0.7", "WEB_SVC_SERVICE_PORT": "80",
                    "WEB_SVC_SERVICE_PORT_HTTP": "80", "WEB_SVC_PORT": "tcp://198.19.0.7:80",
                    "WEB_SVC_PORT_80_TCP": "tcp://198.19.0.7:80",
                    "WEB_SVC_PORT_80_TCP_PROTO": "tcp", "WEB_SVC_PORT_80_TCP_PORT": "80",
                    "WEB_SVC_PORT_80_TCP_ADDR": "198.19.0.7"} if links else {})
    hosts = (out / "hosts").read_text()
    assert hosts == managed_hosts(pod, [ip])
    assert f"{ip}\tp1\n" in hosts and "127.0.0.1\tfoo.local\n" in hosts
    assert Path("/etc/hosts").read_text() != hosts   # the host's own file is untouched


def test_sigterm_goes_to_the_first_process_only_and_its_children_die_with_it(
        net: Any, tmp_path: Path) -> None:
    """Stopping a container signals its first process, as a runtime does (the process
    decides what its children get); the children it leaves are killed when it ends."""
    api = FakeApi()
    child = "trap 'echo child got TERM' TERM; while :; do sleep 0.1; done"
    first = (f"trap 'echo first got TERM; exit 0' TERM; sh -c \"{child}\" & "
             "while :; do sleep 0.1; done")
    pod = _pod(PAUSE_IMAGE, command=["sh", "-c", first])
    gone = threading.Event()
    runner = _runner(pod, api, net, tmp_path, gone)
    try:
        container = _until("the container", lambda: runner.containers.get("main"))
        leader = _until("its first process", lambda: container.proc and container.proc.pid)
        log = container.log
        child_pid = _until("the container's child", lambda: next(
            (pid for pid in _group(leader) if pid != leader
             and b"child got TERM" in _cmdline(pid)), None))
    finally:
        runner.terminate()
        runner.join(20)
    assert gone.is_set()
    assert "first got TERM" in log.read_text()
    assert "child got TERM" not in log.read_text()
    _until("the child gone", lambda: not Path(f"/proc/{child_pid}").exists(), timeout=5)


def test_a_failed_pod_keeps_its_logs_until_it_is_deleted(net: Any, tmp_path: Path) -> None:
    """``restartPolicy: Never`` and a failing init container: the pod is Failed, its
    processes and network are gone, and ``kubectl logs`` still finds the container's log
    until the pod is deleted."""
    api = FakeApi()
    pod = _pod(PAUSE_IMAGE, command=["sh", "-c", "sleep 60"])
    pod["spec"]["restartPolicy"] = "Never"
    pod["spec"]["initContainers"] = [{"name": "init", "image": PAUSE_IMAGE,
                                      "command": ["sh", "-c", "echo cannot fetch; exit 3"]}]
    gone = threading.Event()
    runner = _runner(pod, api, net, tmp_path, gone)
    try:
        _until("Failed", lambda: api.last().get("phase") == "Failed")
        _until("the pod's network gone", lambda: net.pods == {})
        assert not gone.wait(1.0)   # still this node's pod: its logs are served
        log, running = runner.log_source("init")
        assert log.read_text() == "cannot fetch\n" and not running()
        assert api.last()["initContainerStatuses"][0]["state"]["terminated"][
            "exitCode"] == 3
    finally:
        runner.terminate()   # the pod is deleted
        runner.join(20)
    assert gone.is_set()


def _group(pgid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
