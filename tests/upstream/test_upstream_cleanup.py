"""Clean-up of ``harness cluster up --upstream`` when it does not get to stop normally:
killed with SIGKILL (its components and pods die with it through ``PR_SET_PDEATHSIG``, a
pod's own child is orphaned, the network, nftables tables and folders stay) and then
``harness gc --local-only`` removes every process, namespace, link, route, table and mount
of the run; Ctrl-C (SIGINT) and SIGTERM stop it with nothing left at all, also while it
is still coming up (SIGTERM during the wait for KServe: it stops at once).

Each test starts a cluster of its own (one per host: they run before the shared one)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from upstream_run import harness_cli, run_leftovers, start_upstream

from harness.upstream.sweep import run_processes

pytestmark = pytest.mark.own_cluster

# the pod's container forks a child of its own (not the node agent's, so no PDEATHSIG for
# it): what a SIGKILL of the run orphans, and only harness gc can find by the run id
ORPHANING = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "orphaning"},
             "spec": {"terminationGracePeriodSeconds": 2, "containers": [{
                 "name": "main", "image": "registry.k8s.io/pause:3.10",
                 "command": ["sh", "-c", "sleep 3600 & exec sleep 3601"]}]}}


def _kubectl(state: dict[str, Any], *args: str, input: str | None = None) -> str:
    proc = subprocess.run(["kubectl", "--kubeconfig", state["kubeconfig"], *args],
                          capture_output=True, text=True, input=input, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _with_a_running_pod(state: dict[str, Any]) -> None:
    _kubectl(state, "apply", "-f", "-", input=yaml.safe_dump(ORPHANING))
    _kubectl(state, "wait", "--for=condition=Ready", "pod/orphaning", "--timeout=90s")
    run = state["run_id"]
    deadline = time.monotonic() + 30
    while len(_sleepers(run)) < 2:   # both sleeps started
        assert time.monotonic() < deadline, "the pod's processes did not start"
        time.sleep(0.2)


def _sleepers(run: str) -> list[int]:
    found = []
    for pid, (r, _owner) in run_processes().items():
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if r == run and cmd[:1] == [b"sleep"] and cmd[1:2] in ([b"3600"], [b"3601"]):
            found.append(pid)
    return found


def _kill_then_gc(proc: subprocess.Popen[str], always: bool = False) -> None:
    """A test's clean-up: a ``cluster up`` still running is killed and ``harness gc`` sweeps
    what it left (``always``: sweep even when it had ended, as after the SIGKILL case)."""
    alive = proc.poll() is None
    if alive:
        proc.kill()
        proc.wait(30)
    if alive or always:
        subprocess.run([sys.executable, "-m", "harness", "gc", "--local-only"],
                       capture_output=True, timeout=120)


def _everything_there(run: str, state_dir: Path) -> None:
    """What the checks below expect gone is really there while the run lives."""
    there = run_leftovers(run, state_dir)
    for kind in ("processes", "netns", "/etc/netns", "links", "routes", "nftables",
                 "mounts", "folders", "registration"):
        assert kind in there, f"a live run shows no {kind}: the check would prove nothing"
    assert any(f"hxb{run}" in r and "198.19.0.0/16" in r for r in there["routes"])


def test_sigkill_then_harness_gc_removes_everything(tmp_path: Path, host_lock: None) -> None:
    state_dir = tmp_path / "state"
    proc, state = start_upstream(state_dir)
    run = state["run_id"]
    try:
        _with_a_running_pod(state)
        _everything_there(run, state_dir)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
        # the kernel ended the components and the containers (PDEATHSIG); the container's
        # own child lives on as an orphan, and the network and folders stay
        deadline = time.monotonic() + 15
        while len(_sleepers(run)) > 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        orphans = _sleepers(run)
        assert len(orphans) == 1, orphans
        crashed = run_leftovers(run, state_dir)
        for kind in ("netns", "links", "routes", "nftables", "mounts", "folders",
                     "registration"):
            assert kind in crashed, f"{kind} already gone before harness gc: {crashed}"
        gc = subprocess.run([sys.executable, "-m", "harness", "gc", "--local-only"],
                            capture_output=True, text=True, timeout=120)
        assert gc.returncode == 0, gc.stderr
        assert f"removed process {orphans[0]} of crashed upstream run {run}" in gc.stdout
        assert f"removed link hxb{run}" in gc.stdout
        assert "removed nftables table ip kube-proxy" in gc.stdout
        deadline = time.monotonic() + 10
        left = run_leftovers(run, state_dir)
        while left and time.monotonic() < deadline:   # the orphan's SIGKILL lands
            time.sleep(0.2)
            left = run_leftovers(run, state_dir)
        assert left == {}, f"harness gc left: {left}"
    finally:
        _kill_then_gc(proc, always=True)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_and_sigterm_leave_nothing(tmp_path: Path, host_lock: None,
                                          sig: signal.Signals) -> None:
    state_dir = tmp_path / "state"
    proc, state = start_upstream(state_dir)
    run = state["run_id"]
    try:
        _with_a_running_pod(state)
        _everything_there(run, state_dir)
        proc.send_signal(sig)
        assert proc.wait(120) == 0
        assert run_leftovers(run, state_dir) == {}
        assert not (state_dir / "state.json").exists()
        log = state_dir.with_name("state.log").read_text()
        assert "Traceback" not in log, log[-3000:]
    finally:
        _kill_then_gc(proc)


def test_sigterm_while_kserve_comes_up_stops_at_once_and_leaves_nothing(
        tmp_path: Path, host_lock: None) -> None:
    # the bring-up's longest wait (KServe's manager: ~30 s of readiness delay) with
    # Knative's pods running: SIGTERM ends it there, not when start() would have returned
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    log = tmp_path / "up.log"
    with log.open("w") as fh:
        proc = harness_cli("cluster", "up", "--upstream", "--serving", "--state-dir",
                           str(state_dir), stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while "KServe kserve-controller-manager Ready ..." not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        run = next(state_dir.glob("upstream-*")).name.removeprefix("upstream-")
        assert run_processes() and any(r == run for r, _ in run_processes().values())
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(120) == 128 + signal.SIGTERM, log.read_text()[-3000:]
        took = time.monotonic() - sent
        print(f"SIGTERM during the KServe wait: exited in {took:.1f} s")
        text = log.read_text()
        assert text.splitlines()[-1] == ("harness cluster: SIGTERM while starting: stopped "
                                         "what had started")
        assert "Traceback" not in text and "KServe kserve-controller-manager Ready:" not in text
        assert took < 30, f"took {took:.1f} s"
        assert run_leftovers(run, state_dir) == {}
    finally:
        _kill_then_gc(proc)
