"""The upstream cluster's parts that need no built binaries: the PKI, the supervisor, the
sweep of crashed runs and the refusal on a host it cannot run on."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness.cli import main
from harness.nodeagent.childproc import OWNER_ENV, RUN_ENV
from harness.upstream import sweep as sweep_mod
from harness.upstream.pki import make_pki
from harness.upstream.supervisor import Spec, Supervisor


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_pki_signs_serving_and_client_certificates(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, service_ip="198.19.0.1", advertise_ip="198.18.0.1")
    ca = _cert(pki.ca_cert)
    serving = _cert(pki.apiserver_cert)
    serving.verify_directly_issued_by(ca)
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(i) for i in sans.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1", "198.19.0.1", "198.18.0.1"}
    assert "kubernetes.default.svc.cluster.local" in sans.get_values_for_type(x509.DNSName)
    admin = _cert(pki.client_cert("admin"))
    admin.verify_directly_issued_by(ca)
    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == \
        "system:masters"
    usage = admin.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    kcm = _cert(pki.client_cert("controller-manager"))
    assert kcm.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
        "system:kube-controller-manager"
    assert oct(pki.ca_key.stat().st_mode & 0o777) == "0o600"
    assert pki.sa_pub.read_text().startswith("-----BEGIN PUBLIC KEY-----")


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(i.decode().split("=", 1) for i in raw if b"=" in i)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="procfs")
def test_supervisor_restarts_a_dead_child_and_stops_its_group(tmp_path: Path) -> None:
    events: list[str] = []
    sup = Supervisor("abc123", tmp_path / "logs", on_event=events.append)
    try:
        pid = sup.start(Spec("sleeper", ["sh", "-c", "echo hello; sleep 60 & wait"],
                             grace_s=2))
        assert _environ(pid)[RUN_ENV] == "abc123"
        assert _environ(pid)[OWNER_ENV] == str(os.getpid())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sup.pids()["sleeper"] == pid:
            time.sleep(0.1)
        new = sup.pids()["sleeper"]
        assert new != pid and sup.restarts("sleeper") == 1
        deadline = time.monotonic() + 10
        children: list[str] = []
        while time.monotonic() < deadline and not children:  # sh's background sleep
            children = Path(f"/proc/{new}/task/{new}/children").read_text().split()
            time.sleep(0.05)
        assert children
        assert any("sleeper exited" in e for e in events)
        assert "hello" in sup.log_path("sleeper").read_text()
        child = sup._children["sleeper"].proc
    finally:
        sup.stop()
    assert child.returncode is not None  # reaped
    def dead(pid: str) -> bool:  # gone, a zombie, or its pid reused by another program
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().split()
        except OSError:
            return True
        return fields[1] != "(sleep)" or fields[2] == "Z"

    deadline = time.monotonic() + 5  # SIGKILL is delivered, not instant
    while time.monotonic() < deadline and not all(dead(p) for p in children):
        time.sleep(0.05)
    assert all(dead(p) for p in children)  # the whole group went, not only the leader


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="procfs")
def test_sweep_kills_processes_of_dead_runs_only(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    from harness.nodeagent import network
    monkeypatch.setattr(network, "runs_on_host", set)  # other runs' networks: not ours
    dead_owner = int(Path("/proc/sys/kernel/pid_max").read_text())  # never a live pid
    orphan = subprocess.Popen(["sleep", "60"], env={
        **os.environ, RUN_ENV: "dead01", OWNER_ENV: str(dead_owner)})
    kept = subprocess.Popen(["sleep", "60"], env={
        **os.environ, RUN_ENV: "live01", OWNER_ENV: str(os.getpid())})
    folder = tmp_path / "upstream-dead01"
    folder.mkdir()
    sweep_mod.register("dead01", folder)
    reg = sweep_mod.runs_dir() / "dead01.json"
    reg.write_text(reg.read_text().replace(f'"pid": {os.getpid()}', f'"pid": {dead_owner}'))
    try:
        dry = sweep_mod.sweep(dry_run=True)
        assert (orphan.pid, "dead01") in dry.processes and orphan.poll() is None
        result = sweep_mod.sweep()
        assert (orphan.pid, "dead01") in result.processes
        assert all(pid != kept.pid for pid, _ in result.processes)
        assert orphan.wait(5) == -signal.SIGKILL
        assert kept.poll() is None
        assert not folder.exists() and result.runs == ["dead01"]
    finally:
        for p in (orphan, kept):
            p.kill()
            p.wait()


def test_gc_local_only_sweeps_without_a_cluster(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert main(["gc", "--local-only"]) == 0


def test_up_upstream_as_non_root_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["cluster", "up", "--upstream", "--state-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs root" in err[0]
    assert not list(tmp_path.iterdir())


def test_up_upstream_off_linux_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert main(["cluster", "up", "--upstream", "--state-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs Linux" in err[0]


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.geteuid() != 0
                    or not shutil.which("ip"), reason="network namespaces: Linux, root, ip")
def test_sweep_removes_a_dead_runs_network_and_keeps_a_live_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.nodeagent import network

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    live, dead = network.Network(secrets.token_hex(3)), network.Network(secrets.token_hex(3))
    try:
        live.setup()
    except network.NetworkBusy as exc:  # a live cluster or another test run on this host
        pytest.skip(str(exc))
    try:
        live.add_pod("ns/a")
        dead.setup(alone=False)
        dead.add_pod("ns/b")
        dead_pid = int(Path("/proc/sys/kernel/pid_max").read_text())
        network.ip("link", "set", "dev", dead.bridge, "alias",
                   f"{network.OWNER_ALIAS}{dead_pid}")  # as if its owner had crashed
        result = sweep_mod.sweep()
        assert f"link {dead.bridge}" in result.network
        assert network.run_netns(dead.run_id) == []
        assert network.run_netns(live.run_id) and live.bridge in network.run_bridges()
    finally:
        live.teardown()
        network.sweep_run(dead.run_id)


def test_up_upstream_without_nft_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "nft" else real(name))
    assert main(["cluster", "up", "--upstream", "--state-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'nft'" in err[0] and "nftables" in err[0]
