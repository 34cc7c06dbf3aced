"""The host's one upstream-cluster slot (:mod:`harness.upstream.hostlock`) with real
processes contending for a lock file of their own (``HARNESS_UPSTREAM_LOCK``): a waiter is
queued in the kernel (a blocking ``flock``, not a poll that others overtake) and is told
who holds the slot; the slot passes to a child through an inherited descriptor or is
recognised as its ancestor's; ``harness cluster up --upstream`` waits for it and refuses
in one line after ``--lock-wait`` seconds, having made nothing."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.upstream import hostlock

HOLD = """
import sys, time
from harness.errors import UserError
from harness.upstream.hostlock import hold
try:
    with hold(lambda line: print("say:", line, flush=True), timeout_s=float(sys.argv[1])):
        print("holding", flush=True)
        {body}
except UserError as exc:
    print("refused:", exc, flush=True)
    sys.exit(2)
"""


def _python(code: str, *args: str, env: dict[str, str], **kw) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], text=True,
                            env={**os.environ, **env}, stdout=subprocess.PIPE, **kw)


def _holder(lock: Path) -> subprocess.Popen[str]:
    """A process holding ``lock`` (plain flock) until its stdin closes."""
    proc = _python("import fcntl, sys\nf = open(sys.argv[1], 'a')\n"
                   "fcntl.flock(f, fcntl.LOCK_EX)\nprint('held', flush=True)\n"
                   "sys.stdin.read()\n", str(lock), env={}, stdin=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def _until(what: str, check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


@pytest.fixture
def lock(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "upstream.lock"
    monkeypatch.setenv(hostlock.LOCK_ENV, str(path))
    return path


def test_a_waiter_is_queued_in_the_kernel_told_the_holder_and_gets_the_slot(lock) -> None:
    holder = _holder(lock)
    env = {hostlock.LOCK_ENV: str(lock)}
    waiter = _python(HOLD.format(body="pass"), "30", env=env)
    try:
        assert waiter.stdout is not None
        first = waiter.stdout.readline()
        assert first.startswith(f"say: waiting up to 30 s for the host's upstream-cluster "
                                f"slot ({lock}): another upstream cluster holds it (pid "
                                f"{holder.pid}: {sys.executable} -c import fcntl"), first
        # blocked in flock, in the kernel's queue for the lock (a poller never shows here)
        _until("the waiter in /proc/locks", lambda: waiter.pid in hostlock.waiters(lock))
        assert hostlock.holder(lock) == f"pid {holder.pid}: {hostlock._command(holder.pid)}"
        let_go = time.monotonic()
        holder.stdin.close()
        assert waiter.stdout.readline() == "say: got the host's upstream-cluster slot\n"
        assert time.monotonic() - let_go < 5
        assert waiter.wait(10) == 0
    finally:
        for proc in (holder, waiter):
            proc.kill()
            proc.wait()


def test_the_wait_runs_out_in_one_line_naming_the_holder(lock) -> None:
    holder = _holder(lock)
    try:
        started = time.monotonic()
        res = _python(HOLD.format(body="pass"), "1", env={hostlock.LOCK_ENV: str(lock)})
        out, _ = res.communicate(timeout=30)
        assert res.returncode == 2
        assert 0.9 < time.monotonic() - started < 15
        assert out.splitlines()[-1] == (
            f"refused: another upstream cluster held the host's slot ({lock}) for 1 s (pid "
            f"{holder.pid}: {hostlock._command(holder.pid)}); one upstream cluster runs per "
            f"host (wait longer with {hostlock.WAIT_ENV})")
    finally:
        holder.kill()
        holder.wait()


def test_a_child_holds_the_slot_through_its_inherited_descriptor(lock, tmp_path) -> None:
    # the parent takes the slot, hands its descriptor to a child (as harness conformance
    # does) and exits; the child holds the slot on its own, and a third process is told
    # the child holds it
    go, log = tmp_path / "go", tmp_path / "child.log"
    child = HOLD.format(body=f"import pathlib\n        while not pathlib.Path({str(go)!r})"
                             ".exists(): time.sleep(0.05)")
    parent = _python(f"""
        import subprocess, sys
        from harness.upstream.hostlock import hold
        with hold(print) as lock:
            child = subprocess.Popen([sys.executable, "-c", {child!r}, "0"],
                                     pass_fds=(lock.fileno(),), stdout=open({str(log)!r}, "w"))
        print(child.pid, flush=True)
        """, env={hostlock.LOCK_ENV: str(lock)})
    out, _ = parent.communicate(timeout=30)
    child_pid = int(out.split()[-1])
    try:
        _until("the child's hold", lambda: "holding\n" in log.read_text())
        assert log.read_text().startswith(f"say: holding the host's upstream-cluster slot "
                                          f"({lock}) through descriptor ")
        assert child_pid in _lock_holders_by_fd(lock)
        third = _python(HOLD.format(body="pass"), "0", env={hostlock.LOCK_ENV: str(lock)})
        out3, _ = third.communicate(timeout=30)
        assert third.returncode == 2, out3
        assert f"(pid {child_pid}: {sys.executable} -c" in out3.splitlines()[-1]
    finally:
        go.touch()
        _until("the child's end", lambda: not Path(f"/proc/{child_pid}").exists())
    with lock.open("a") as fh:   # free again
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _lock_holders_by_fd(lock: Path) -> list[int]:
    """Pids that have ``lock`` open (the lock itself was taken by their exited parent)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if any(os.path.realpath(fd) == str(lock) for fd in (entry / "fd").iterdir()):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_a_child_of_the_holder_runs_inside_its_slot_and_a_stranger_does_not(lock) -> None:
    # a test session holding the slot starts 'harness cluster up --upstream' without
    # handing it a descriptor: the child sees its ancestor is the holder and does not wait
    # for it (timeout 0: it would refuse at once); a process the holder did not start waits
    parent = _python(f"""
        import os, subprocess, sys
        from harness.upstream.hostlock import hold
        with hold(print):
            child = subprocess.run([sys.executable, "-c", {HOLD.format(body="pass")!r}, "0"],
                                   capture_output=True, text=True)
            print("child", child.returncode, child.stdout.replace(chr(10), " | "))
            print(os.getpid(), flush=True)
            sys.stdin.read()
        """, env={hostlock.LOCK_ENV: str(lock)}, stdin=subprocess.PIPE)
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        pid = int(parent.stdout.readline())
        assert line.startswith(f"child 0 say: the host's upstream-cluster slot ({lock}) is "
                               f"held by pid {pid} ({sys.executable} -c"), line
        assert "which started this process | holding" in line
        stranger = _python(HOLD.format(body="pass"), "0", env={hostlock.LOCK_ENV: str(lock)})
        out, _ = stranger.communicate(timeout=30)
        assert stranger.returncode == 2 and f"(pid {pid}: " in out
    finally:
        parent.kill()
        parent.wait()


_ROOT = pytest.mark.skipif(os.geteuid() != 0 or not sys.platform.startswith("linux"),
                           reason="harness cluster up --upstream checks for root first")


@_ROOT
def test_cluster_up_upstream_waits_for_the_slot_then_refuses_having_made_nothing(
        lock, tmp_path) -> None:
    holder = _holder(lock)
    state = tmp_path / "state"
    try:
        res = subprocess.run([sys.executable, "-m", "harness", "cluster", "up", "--upstream",
                              "--lock-wait", "1", "--state-dir", str(state)],
                             capture_output=True, text=True, timeout=60,
                             env={**os.environ, hostlock.LOCK_ENV: str(lock)})
    finally:
        holder.kill()
        holder.wait()
    assert res.returncode == 2, res.stdout + res.stderr
    who = f"pid {holder.pid}: {sys.executable} -c import fcntl, sys f = open("
    assert res.stdout.startswith(f"harness cluster: waiting up to 1 s for the host's "
                                 f"upstream-cluster slot ({lock}): another upstream cluster "
                                 f"holds it ({who}"), res.stdout
    errors = res.stderr.splitlines()
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"harness cluster: error: another upstream cluster held the "
                                f"host's slot ({lock}) for 1 s ({who}")
    assert errors[0].endswith("; one upstream cluster runs per host (wait longer with "
                              "--lock-wait SECONDS)")
    assert not state.exists() or not any(state.iterdir())   # nothing half-made


@pytest.mark.parametrize("argv, message", [
    (["up", "--local", "--lock-wait", "5"], "harness cluster: error: --lock-wait goes with "
     "--upstream (the host's one upstream-cluster slot)"),
    (["up", "--upstream", "--lock-wait", "-1"], "harness cluster up: error: argument "
     "--lock-wait: '-1' is not a number of seconds (0 or more)"),
    (["up", "--upstream", "--lock-wait", "soon"], "harness cluster up: error: argument "
     "--lock-wait: 'soon' is not a number of seconds (0 or more)"),
])
def test_a_bad_lock_wait_is_one_line_and_exit_2(argv, message, tmp_path) -> None:
    res = subprocess.run([sys.executable, "-m", "harness", "cluster", *argv, "--state-dir",
                          str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1] == message
    assert not any(tmp_path.iterdir())
