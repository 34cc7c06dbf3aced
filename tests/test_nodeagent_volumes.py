"""The node agent's volumes without a cluster: kubelet's atomic layout and its updates, the
downward API's rendering, configMap/secret/projected payloads (items, modes, optional,
kubelet's error words) from a recording fake API, the bound service-account token and its
refresh rule, the mount plan (subPath, subPathExpr, escapes), the mount setup in a private
mount namespace (nothing appears on the host), preStop grace arithmetic and the log
server's ``--previous`` answers."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.nodeagent import atomic_writer, childproc, hooks, mounts, volumes
from harness.nodeagent.atomic_writer import File
from harness.nodeagent.downward import field_value, format_map, go_quote, resource_value

# ---------------------------------------------------------------- atomic writer


def test_atomic_layout_and_update(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    assert atomic_writer.write(target, {"a": File(b"1"), "dir/b": File(b"2", 0o600)})
    data = os.readlink(target / "..data")
    assert data.startswith("..20") and (target / data).is_dir()
    assert os.readlink(target / "a") == "..data/a" and os.readlink(target / "dir") == "..data/dir"
    assert (target / "dir" / "b").read_bytes() == b"2"
    assert (target / data / "dir" / "b").stat().st_mode & 0o777 == 0o600
    assert not atomic_writer.write(target, {"a": File(b"1"), "dir/b": File(b"2", 0o600)})
    assert os.readlink(target / "..data") == data         # unchanged: nothing rewritten
    assert atomic_writer.write(target, {"a": File(b"new")})
    assert (target / "a").read_bytes() == b"new"
    assert os.readlink(target / "..data") != data and not (target / data).exists()
    assert not os.path.lexists(target / "dir")                # removed key: its link too
    assert sorted(os.listdir(target)) == sorted(["..data", "a", os.readlink(target / "..data")])


@pytest.mark.parametrize("bad", ["/abs", "a/../b", "..x", ""])
def test_atomic_writer_refuses_kubelets_bad_paths(tmp_path: Path, bad: str) -> None:
    with pytest.raises(atomic_writer.PayloadError):
        atomic_writer.write(tmp_path / "v", {bad: File(b"x")})

# ---------------------------------------------------------------- downward API


POD = {"metadata": {"name": "p1", "namespace": "ns1", "uid": "u-1",
                    "labels": {"b": "2", "a": 'x"y'}, "annotations": {"k": "v\n"}},
       "spec": {"nodeName": "cpu-1", "serviceAccountName": "default", "containers": [
           {"name": "main", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"},
                                          "limits": {"memory": "128Mi"}}}]}}


def test_downward_fields_as_kubelet_renders_them() -> None:
    assert field_value(POD, "metadata.labels") == 'a="x\\"y"\nb="2"'
    assert field_value(POD, "metadata.annotations") == 'k="v\\n"'
    assert field_value(POD, "metadata.labels['b']") == "2"
    assert field_value(POD, "metadata.uid") == "u-1"
    assert field_value(POD, "status.podIP", pod_ip="198.18.0.5") == "198.18.0.5"
    assert go_quote("é\x01") == '"é\\x01"'
    assert format_map({}) == ""


def test_downward_resources_round_up_and_default_to_allocatable() -> None:
    main = POD["spec"]["containers"][0]
    assert resource_value(main, "requests.cpu") == "1"                 # 250m -> 1 core
    assert resource_value(main, "requests.cpu", "1m") == "250"
    assert resource_value(main, "limits.memory", "1Mi") == "128"
    assert resource_value(main, "requests.memory") == str(64 * 2**20)
    assert resource_value(main, "limits.cpu", "1m", {"cpu": "4"}) == "4000"  # no limit
    with pytest.raises(ValueError):
        resource_value(main, "limits.gpus-of-mars")

# ---------------------------------------------------------------- payloads from the API


class FakeApi:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {
            "configmaps/settings": {"data": {"a": "1", "b": "2"}},
            "configmaps/kube-root-ca.crt": {"data": {"ca.crt": "CA PEM"}},
            "secrets/creds": {"data": {"user": base64.b64encode(b"admin").decode()}},
            "nodes/cpu-1": {"status": {"allocatable": {"cpu": "4"}}}}
        self.token_requests: list[dict[str, Any]] = []
        self.n = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/token"):
            self.n += 1
            body = json.loads(request.content)
            self.token_requests.append(body)
            ttl = body["spec"]["expirationSeconds"]
            exp = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl)
            return httpx.Response(201, json={"status": {
                "token": f"tok-{self.n}",
                "expirationTimestamp": exp.strftime("%Y-%m-%dT%H:%M:%SZ")}})
        key = "/".join(path.rstrip("/").split("/")[-2:])
        if key in self.objects:
            return httpx.Response(200, json=self.objects[key])
        kind, name = key.split("/")
        return httpx.Response(404, json={"kind": "Status", "reason": "NotFound",
                                         "message": f'{kind} "{name}" not found'})


def _volumes(tmp_path: Path, vols: list[dict[str, Any]], api: FakeApi | None = None,
             clock: Any = None) -> volumes.PodVolumes:
    pod = json.loads(json.dumps(POD))
    pod["spec"]["volumes"] = vols
    client = httpx.Client(transport=httpx.MockTransport((api or FakeApi()).handler),
                          base_url="https://api")
    kw = {"clock": clock} if clock else {}
    return volumes.PodVolumes(pod, tmp_path / "volumes", client, run_id="abc123",
                              pod_ip="198.18.0.9", **kw)


def test_config_map_and_secret_volumes(tmp_path: Path) -> None:
    v = _volumes(tmp_path, [
        {"name": "all", "configMap": {"name": "settings"}},
        {"name": "some", "configMap": {"name": "settings", "defaultMode": 0o400,
                                       "items": [{"key": "b", "path": "x/b.txt",
                                                  "mode": 0o640}, {"key": "a", "path": "a"}]}},
        {"name": "sec", "secret": {"secretName": "creds"}},
        {"name": "gone", "secret": {"secretName": "nope", "optional": True}}])
    v.setup()
    assert (v.dirs["all"] / "a").read_text() == "1" and (v.dirs["all"] / "b").read_text() == "2"
    some = v.dirs["some"]
    assert (some / "x" / "b.txt").read_text() == "2"
    assert os.stat(some / "x" / "b.txt").st_mode & 0o777 == 0o640
    assert os.stat(some / "a").st_mode & 0o777 == 0o400
    assert not (some / "b").exists()
    assert (v.dirs["sec"] / "user").read_bytes() == b"admin"
    assert atomic_writer.current(v.dirs["gone"]) == {}


@pytest.mark.parametrize(("vol", "words"), [
    ({"configMap": {"name": "missing"}}, 'configmaps "missing" not found'),
    ({"configMap": {"name": "settings", "items": [{"key": "zz", "path": "z"}]}},
     "configmap references non-existent config key: zz"),
    ({"secret": {"secretName": "creds", "items": [{"key": "pw", "path": "pw"}]}},
     "secret references non-existent secret key: pw"),
    ({"nfs": {"server": "x", "path": "/"}}, "the node agent does not support volume type nfs"),
    ({"persistentVolumeClaim": {"claimName": "c"}}, "error processing PVC ns1/c: failed to "
                                                    "fetch PVC from API server")])
def test_volume_errors_carry_kubelets_words(tmp_path: Path, vol: dict[str, Any],
                                            words: str) -> None:
    v = _volumes(tmp_path, [{"name": "v1", **vol}])
    with pytest.raises(volumes.VolumeError) as err:
        v.setup()
    assert str(err.value).startswith('MountVolume.SetUp failed for volume "v1" : ')
    assert words in str(err.value)


def test_persistent_volume_claim_is_its_bound_volumes_folder(tmp_path: Path) -> None:
    api = FakeApi()
    api.objects["persistentvolumeclaims/models"] = {
        "metadata": {"uid": "c-1"}, "spec": {"volumeName": "pv-1"},
        "status": {"phase": "Bound"}}
    api.objects["persistentvolumes/pv-1"] = {
        "metadata": {"name": "pv-1"},
        "spec": {"hostPath": {"path": str(tmp_path)}, "claimRef": {"uid": "c-1"}}}
    v = _volumes(tmp_path, [{"name": "m", "persistentVolumeClaim": {"claimName": "models"}}],
                 api)
    v.setup()
    assert v.dirs["m"] == tmp_path


def test_kube_api_access_projected_volume(tmp_path: Path) -> None:
    api = FakeApi()
    v = _volumes(tmp_path, [{"name": "kube-api-access-x1", "projected": {
        "defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt",
                           "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}},
        {"name": "aud", "projected": {"sources": [{"serviceAccountToken": {
            "audience": "vault", "expirationSeconds": 600, "path": "vault-token"}}]}},
        {"name": "info", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "cpu", "resourceFieldRef": {"containerName": "main",
                                                 "resource": "limits.cpu", "divisor": "1m"}}]}}],
        api)
    v.setup()
    d = v.dirs["kube-api-access-x1"]
    assert (d / "token").read_text() == "tok-1"
    assert (d / "ca.crt").read_text() == "CA PEM" and (d / "namespace").read_text() == "ns1"
    assert os.stat(d / "token").st_mode & 0o777 == 0o644
    first = api.token_requests[0]["spec"]
    assert first["expirationSeconds"] == 3607 and first["audiences"] is None
    assert first["boundObjectRef"] == {"apiVersion": "v1", "kind": "Pod", "name": "p1",
                                       "uid": "u-1"}
    assert api.token_requests[1]["spec"]["audiences"] == ["vault"]
    assert (v.dirs["aud"] / "vault-token").read_text() == "tok-2"
    assert (v.dirs["info"] / "labels").read_text() == 'a="x\\"y"\nb="2"'
    assert (v.dirs["info"] / "cpu").read_text() == "4000"
    # a sync within the token's first 80 %: the same token, nothing rewritten
    data = os.readlink(d / "..data")
    v.sync(force=True)
    assert os.readlink(d / "..data") == data and len(api.token_requests) == 2
    # the ConfigMap changes: the volume follows through the ..data swap
    api.objects["configmaps/kube-root-ca.crt"]["data"]["ca.crt"] = "NEW CA"
    v.sync(force=True)
    assert (d / "ca.crt").read_text() == "NEW CA" and os.readlink(d / "..data") != data


def test_token_refresh_at_80_percent_of_its_life(tmp_path: Path) -> None:
    exp = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    ttl = 3600
    assert not volumes.requires_refresh(exp, ttl, exp - dt.timedelta(seconds=721))
    assert volumes.requires_refresh(exp, ttl, exp - dt.timedelta(seconds=719))
    long = 7 * 24 * 3600   # issued more than a day ago: refreshed even before 80 %
    assert volumes.requires_refresh(exp, long, exp - dt.timedelta(seconds=long - 24 * 3600 - 1))
    # through PodVolumes with a moving clock
    api = FakeApi()
    now = [dt.datetime.now(dt.UTC)]
    v = _volumes(tmp_path, [{"name": "t", "projected": {"sources": [{"serviceAccountToken": {
        "expirationSeconds": 600, "path": "token"}}]}}], api, clock=lambda: now[0])
    v.setup()
    assert (v.dirs["t"] / "token").read_text() == "tok-1"
    now[0] += dt.timedelta(seconds=470)
    v.sync(force=True)
    assert (v.dirs["t"] / "token").read_text() == "tok-1"
    now[0] += dt.timedelta(seconds=20)                    # 490 s of 600: past 80 %
    v.sync(force=True)
    assert (v.dirs["t"] / "token").read_text() == "tok-2"


def test_empty_dirs_and_memory_medium_removed_with_the_pod(tmp_path: Path) -> None:
    if not volumes.MEMORY_ROOT.is_dir():
        pytest.skip("no /dev/shm")
    v = _volumes(tmp_path, [{"name": "scratch", "emptyDir": {}},
                            {"name": "ram", "emptyDir": {"medium": "Memory"}}])
    v.setup()
    assert v.dirs["scratch"].is_dir() and v.dirs["scratch"].stat().st_mode & 0o777 == 0o777
    shm = Path(os.path.realpath(v.dirs["ram"]))
    assert shm.parent == volumes.MEMORY_ROOT and shm.name.startswith("hxmabc123-u-1-")
    (v.dirs["ram"] / "f").write_text("x")
    v.teardown()
    assert not shm.exists() and not v.root.exists()
    shm.mkdir()          # what a crashed run leaves: harness gc's sweep removes it
    assert volumes.sweep_memory("abc123") == [str(shm)] and not shm.exists()

# ---------------------------------------------------------------- mount plan


def test_mount_plan_subpaths_and_order(tmp_path: Path) -> None:
    vol = tmp_path / "data"
    vol.mkdir()
    atomic_writer.write(tmp_path / "cfg", {"app.yaml": File(b"k: v")})
    container = {"name": "main", "volumeMounts": [
        {"name": "data", "mountPath": "/mnt/models/sub", "subPathExpr": "$(POD_NAME)"},
        {"name": "data", "mountPath": "/mnt"},
        {"name": "cfg", "mountPath": "/etc/app.yaml", "subPath": "app.yaml", "readOnly": True}]}
    plan = mounts.plan(container, {"data": vol, "cfg": tmp_path / "cfg"}, {"POD_NAME": "p1"})
    assert [m.target for m in plan] == ["/mnt", "/etc/app.yaml", "/mnt/models/sub"]
    assert plan[2].source == str(vol / "p1") and (vol / "p1").is_dir()   # made, as kubelet
    assert plan[1].read_only and plan[1].source == str(tmp_path / "cfg" / "app.yaml")
    assert mounts.expand("$(A)-$$(A)-$(B)", {"A": "x"}) == "x-$(A)-$(B)"


@pytest.mark.parametrize(("mount", "words"), [
    ({"subPath": "../x"}, "must not contain '..'"),
    ({"subPath": "/etc"}, "must be a relative path"),
    ({"subPath": "link"}, "not within volume path"),
    ({"name": "other"}, "cannot find volume 'other'")])
def test_mount_plan_refuses_escapes(tmp_path: Path, mount: dict[str, Any], words: str) -> None:
    vol = tmp_path / "data"
    vol.mkdir()
    (vol / "link").symlink_to("/etc")
    container = {"name": "main", "volumeMounts": [{"name": "data", "mountPath": "/x", **mount}]}
    with pytest.raises(mounts.MountError, match=words):
        mounts.plan(container, {"data": vol})


needs_root = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0 or not shutil.which("unshare"),
    reason="mount namespaces need Linux, root and unshare")


@needs_root
def test_mount_setup_shows_volumes_at_mount_paths_and_nothing_on_the_host(
        tmp_path: Path) -> None:
    parent = f"/hx-vol-test-{os.getpid()}"     # a mountPath whose folder the host lacks
    assert not os.path.lexists(parent)
    vol, cfg = tmp_path / "vol", tmp_path / "cfg"
    vol.mkdir()
    (vol / "in").write_text("from the volume")
    atomic_writer.write(cfg, {"token": File(b"tok")})
    plan = mounts.write_plan(tmp_path / "plan.json", [
        mounts.Mount(str(vol), f"{parent}/models"),
        mounts.Mount(str(cfg), f"{parent}/secrets/sa", read_only=True)], cwd=f"{parent}/models")
    script = (f"cat in; echo; cat {parent}/secrets/sa/token; echo; pwd; echo new > out; "
              f"touch {parent}/secrets/sa/x 2>/dev/null || echo read-only; ls /proc/1 >/dev/null"
              " && echo proc-still-there")
    out = subprocess.run(["unshare", "-m", "--propagation", "slave",
                          *mounts.wrap(["sh", "-c", script], plan)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n") == ["from the volume", "tok", f"{parent}/models", "read-only",
                                      "proc-still-there", ""]
    assert (vol / "out").read_text() == "new\n"        # writes reach the volume
    assert not os.path.lexists(parent)                   # nothing on the host's filesystem
    # without ip netns exec / unshare: refused, nothing mounted
    refused = subprocess.run(mounts.wrap(["true"], plan), capture_output=True, text=True)
    assert refused.returncode == 126 and "refusing" in refused.stderr

# ---------------------------------------------------------------- preStop, logs


def test_prestop_time_comes_out_of_the_grace_period() -> None:
    assert hooks.grace_after_prestop(30, 5) == 25
    assert hooks.runs_command(os.getpid())           # pytest: no ip netns / mount setup
    assert not hooks.runs_command(2**22 + 1)         # no such process
    assert hooks.grace_after_prestop(30, 29) == hooks.MIN_GRACE_S    # at least 2 s for TERM
    assert hooks.in_container(42, ["sh", "-c", "x"])[:7] == ["nsenter", "-t", "42", "-m", "-n",
                                                              "-r", "-w"]


def test_an_empty_cmdline_is_not_past_the_mount_setup() -> None:
    """Mid-``execve`` (and as a zombie) a process's ``cmdline`` reads empty; that is not
    "the container's command runs", or a postStart hook can run before the volumes are
    mounted (a FailedPostStartHook seen under load in CI)."""
    child = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        while not childproc.exited(child.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert Path(f"/proc/{child.pid}/cmdline").read_bytes() == b""   # the zombie
        assert childproc.exited(child.pid)
        assert not hooks.runs_command(child.pid)
        t0 = time.monotonic()
        assert not hooks.wait_for_command(child.pid, timeout=5)
        assert time.monotonic() - t0 < 1            # an exited process ends the wait
    finally:
        child.wait()
    assert childproc.exited(child.pid)                  # reaped: gone


def test_logs_previous_is_kubelets_bad_request(tmp_path: Path) -> None:
    from harness.nodeagent.logs import LogServer, NoLog
    from harness.upstream.pki import make_pki

    pki = make_pki(tmp_path / "pki", service_ip="198.19.0.1", advertise_ip="198.18.0.1",
                   extra_serving={"nodeagent": ["localhost", "127.0.0.1"]})
    old = tmp_path / "0.log"
    old.write_text("before the crash\n")

    def lookup(ns: str, pod: str, c: str, previous: bool) -> Any:
        if c == "fresh" and previous:
            raise NoLog('previous terminated container "fresh" in pod "p" not found')
        return old, lambda: False

    srv = LogServer(lookup, cert=pki.directory / "nodeagent.crt",
                    key=pki.directory / "nodeagent.key", ca=pki.ca_cert).start()
    tls = ssl.create_default_context(cafile=str(pki.ca_cert))
    tls.load_cert_chain(str(pki.client_cert("apiserver-kubelet-client")),
                        str(pki.client_key("apiserver-kubelet-client")))
    try:
        with httpx.Client(verify=tls, timeout=5) as c:
            base = f"https://127.0.0.1:{srv.port}/containerLogs/n/p"
            r = c.get(f"{base}/fresh", params={"previous": "true"})
            assert r.status_code == 400
            assert r.text == 'previous terminated container "fresh" in pod "p" not found'
            assert c.get(f"{base}/crashed", params={"previous": "true"}).text == \
                "before the crash\n"
    finally:
        srv.stop()


@needs_root
def test_hook_handlers_report_failures() -> None:
    me = os.getpid()   # nsenter into this process's own namespaces: the command runs here
    ok = hooks.run_handler({"exec": {"command": ["true"]}}, pid=me, env=dict(os.environ),
                           pod_ip="127.0.0.1", port_of=int, timeout=10)
    assert ok is None
    failed = hooks.run_handler({"exec": {"command": ["sh", "-c", "echo no; exit 3"]}}, pid=me,
                               env=dict(os.environ), pod_ip="127.0.0.1", port_of=int,
                               timeout=10)
    assert failed == "command terminated with exit code 3: no\n"
    import socket

    with socket.socket() as s:           # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    refused = hooks.run_handler({"httpGet": {"path": "/stop", "port": port}}, pid=me, env={},
                                pod_ip="127.0.0.1", port_of=int, timeout=2)
    assert refused is not None and f"http://127.0.0.1:{port}/stop" in refused
