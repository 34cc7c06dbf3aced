"""Starting ``harness cluster up --upstream`` for the tests in this folder, and the
inventory of what a run leaves on the host (shared by conftest's session cluster and the
tests that start their own)."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.nodeagent.childproc import die_with_parent
from harness.upstream.sweep import run_processes

UP_TIMEOUT_S = float(os.environ.get("HARNESS_UPSTREAM_UP_TIMEOUT", "300"))


def harness_cli(*args: str, **kw: Any) -> subprocess.Popen[str]:
    """``python -m harness ARGS``; it gets SIGTERM (and tears its cluster down) when the test
    session dies, so a killed pytest leaves no cluster holding the host."""
    kw.setdefault("preexec_fn", functools.partial(die_with_parent, signal.SIGTERM))
    return subprocess.Popen([sys.executable, "-m", "harness", *args], text=True, **kw)


def until(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    """``check()``'s first truthy value, polled every 0.5 s up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


@dataclass
class Upstream:
    """A running upstream cluster as the tests use it: ``kubectl`` on its kubeconfig."""

    kubeconfig: Path
    state: dict[str, Any]
    cache: Path
    log: Path | None = None   # harness cluster up's output

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        kubectl = shutil.which("kubectl")
        assert kubectl, "kubectl not on PATH"
        proc = subprocess.run([kubectl, "--kubeconfig", str(self.kubeconfig),
                               "--cache-dir", str(self.cache), *args],
                              capture_output=True, text=True, input=input, timeout=timeout)
        if check:
            assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)


def start_upstream(state_dir: Path, *options: str) -> tuple[subprocess.Popen[str],
                                                           dict[str, Any]]:
    """``harness cluster up --upstream [options]`` as a user runs it (output to ``<state
    dir>.log``); returns the process and its state file once the cluster is ready."""
    state_dir.mkdir(parents=True, exist_ok=True)
    log = state_dir.with_name(state_dir.name + ".log").open("w")
    proc = harness_cli("cluster", "up", "--upstream", *options, "--state-dir", str(state_dir),
                       stdout=log, stderr=subprocess.STDOUT)
    state_file = state_dir / "state.json"
    deadline = time.monotonic() + UP_TIMEOUT_S
    while not state_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("harness cluster up --upstream did not come up: "
                        + Path(log.name).read_text()[-3000:])
        time.sleep(0.5)
    return proc, json.loads(state_file.read_text())


def run_leftovers(run_id: str, state_dir: Path) -> dict[str, list[str]]:
    """Everything of upstream run ``run_id`` still on this host: its processes (by the run
    id in their environment, orphans included), network namespaces and their
    ``/etc/netns`` folders, links, routes, kube-proxy's nftables tables, mounts, the run's
    folder and its registration. Empty when the run is gone without a trace."""
    from harness.nodeagent import network
    from harness.upstream.sweep import runs_dir

    found: dict[str, list[str]] = {}

    def add(kind: str, items: list[str]) -> None:
        if items:
            found[kind] = items

    add("processes", [f"{pid} {_cmdline(pid)}" for pid, (run, _owner)
                      in run_processes().items() if run == run_id])
    add("netns", network.run_netns(run_id))
    add("/etc/netns", [str(p) for p in Path("/etc/netns").glob(f"*{run_id}*")])
    add("links", [line for line in network.ip("-br", "link").stdout.splitlines()
                  if run_id in line])
    routes = network.ip("route", "show", "table", "all").stdout.splitlines()
    # the unreachable route is host-wide, but only a run puts it there (one per host)
    add("routes", [r for r in routes if run_id in r or r.startswith("unreachable 198.18.")])
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    add("nftables", [t for t in tables.splitlines() if "kube-proxy" in t or run_id in t])
    add("mounts", [m for m in Path("/proc/self/mountinfo").read_text().splitlines()
                   if run_id in m])
    add("folders", [str(p) for p in state_dir.glob(f"upstream-{run_id}")])
    add("registration", [str(p) for p in runs_dir().glob(f"{run_id}.json")])
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"
