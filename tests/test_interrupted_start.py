"""Ctrl-C or SIGTERM while a cluster is still starting takes effect at once
(:func:`harness.emulator.api.process.run_until_signal`): the command stops what had started
and exits 128 + the signal, rather than finishing a bring-up of minutes first (the upstream
cluster waiting for Knative and KServe). Shown with ``harness cluster up --local`` whose
start is held in a long wait after its API server is up; a later signal never cuts the
teardown short; an interrupted build takes its whole ``go`` process group with it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

# harness cluster up --local, its start held in a long wait once the API server listens
SLOW_START = """
import pathlib, sys, time
from harness.emulator import local_cluster
from harness.cli import main

marks = pathlib.Path(sys.argv[1])
real_start, real_stop = local_cluster.LocalCluster.start, local_cluster.LocalCluster.stop

def start(self):
    real_start(self)
    (marks / "port").write_text(str(self.emulator.port))
    time.sleep(120)   # as the upstream cluster waits for KServe
    return self

def stop(self):
    time.sleep(float(sys.argv[2]))
    real_stop(self)
    (marks / "stopped").touch()

local_cluster.LocalCluster.start, local_cluster.LocalCluster.stop = start, stop
sys.exit(main(["cluster", "up", "--local", "--state-dir", str(marks / "state")]))
"""


def _number_in(path: Path) -> int | None:
    """The number a process wrote to ``path``; None until it is there (the file exists,
    empty, before its content is written: seen as ``int('')`` failing)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return int(text) if text.strip().isdigit() else None


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def slow_start(tmp_path):
    """Start the command (its stop taking ``stop_s``); killed at the end whatever happened."""
    started: list[subprocess.Popen[str]] = []

    def start(stop_s: float = 0.0) -> tuple[subprocess.Popen[str], int]:
        proc, port = _start(tmp_path, stop_s, started)
        return proc, port

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _start(tmp_path: Path, stop_s: float,
           started: list[subprocess.Popen[str]]) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-c", SLOW_START, str(tmp_path), str(stop_s)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started.append(proc)
    deadline = time.monotonic() + 60
    while (port := _number_in(tmp_path / "port")) is None:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    assert _listening(port)
    return proc, port


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_start_stops_what_had_started_at_once(tmp_path, slow_start,
                                                             sig) -> None:
    proc, port = slow_start()
    sent = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    assert proc.returncode == 128 + sig, (out, err)
    assert took < 5, f"took {took:.1f} s"   # not the 120 s the start would have waited
    assert out.splitlines()[-1] == (f"harness cluster: {signal.Signals(sig).name} while "
                                    "starting: stopped what had started")
    assert err == ""
    assert (tmp_path / "stopped").exists() and not _listening(port)
    assert not (tmp_path / "state" / "state.json").exists()


def test_a_second_signal_does_not_cut_the_teardown_short(tmp_path, slow_start) -> None:
    proc, port = slow_start(stop_s=1.5)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)   # inside the (slow) teardown now
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, (out, err)
    assert (tmp_path / "stopped").exists() and not _listening(port)
    assert "Traceback" not in err


FAKE_GO = """#!/bin/sh
# a go build that runs long and has a child of its own (as go runs compile)
sleep 300 &
echo $! > "{pids}/child"
echo $$ > "{pids}/go"
echo "go: downloading example.com/x v1.0.0"
wait
"""


def test_an_interrupted_build_stops_go_and_its_children(tmp_path) -> None:
    bindir, pids = tmp_path / "bin", tmp_path / "pids"
    bindir.mkdir()
    pids.mkdir()
    go = bindir / "go"
    go.write_text(FAKE_GO.format(pids=pids))
    go.chmod(0o755)
    target = tmp_path / "target" / "bin"
    target.mkdir(parents=True)
    # SIGINT back to Python's default: a shell without job control starts background jobs
    # with SIGINT ignored, which a child inherits (seen when .ci/run ran under nohup ... &)
    code = textwrap.dedent(f"""
        import signal
        import sys
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from harness.upstream import build
        build._build_one({str(go)!r}, build.components()[0], build.Path({str(target)!r}),
                         sys.stdout, 0)
        """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while (go_pid := _number_in(pids / "go")) is None or \
            (child_pid := _number_in(pids / "child")) is None:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    try:
        proc.send_signal(signal.SIGINT)   # Ctrl-C (or the cluster's StartInterrupted)
        _, err = proc.communicate(timeout=30)
        assert "KeyboardInterrupt" in err
        deadline = time.monotonic() + 5
        while _alive(go_pid) or _alive(child_pid):
            assert time.monotonic() < deadline, "the build's processes outlived it"
            time.sleep(0.05)
        assert not list(target.parent.glob(".staging-*"))
    finally:
        proc.kill()
        proc.wait()
        for pid in (go_pid, child_pid):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
