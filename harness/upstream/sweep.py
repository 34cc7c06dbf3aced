"""Leftovers of upstream-cluster runs that did not stop cleanly (``harness gc``).

Each run registers itself in ``<cache>/harness/upstream/runs/<run id>.json`` (the pid of
the ``harness`` process that owns it and its folder) and every process it starts carries
``HARNESS_UPSTREAM_RUN=<run id>`` and its owner's pid in its environment. A run whose
owner is gone is dead: :func:`sweep` kills its processes (found through
``/proc/<pid>/environ``, so also the orphans a crash leaves: a container's own children,
which ``PR_SET_PDEATHSIG`` does not reach), removes its folder and registration, and its
network (:func:`harness.nodeagent.network.sweep_run`: namespaces with their mounts, the
bridge with its routes, and with the last run the unreachable route and kube-proxy's
nftables tables). Live runs are never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.nodeagent.childproc import OWNER_ENV, RUN_ENV, pid_alive
from harness.upstream.build import cache_root


def runs_dir() -> Path:
    return cache_root() / "runs"


def register(run_id: str, run_dir: Path) -> Path:
    path = runs_dir() / f"{run_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": os.getpid(), "run_dir": str(run_dir),
                                "started": time.time()}))
    return path


def unregister(run_id: str) -> None:
    (runs_dir() / f"{run_id}.json").unlink(missing_ok=True)


def live_runs() -> set[str]:
    live = set()
    for f in runs_dir().glob("*.json"):
        try:
            pid = int(json.loads(f.read_text())["pid"])
        except (OSError, ValueError, KeyError):
            continue
        if pid_alive(pid):
            live.add(f.stem)
    return live


def run_processes() -> dict[int, tuple[str, int]]:
    """pid -> (run id, owner pid) of every process carrying :data:`RUN_ENV`."""
    found: dict[int, tuple[str, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            items = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        env = dict(i.decode(errors="replace").split("=", 1) for i in items if b"=" in i)
        if RUN_ENV in env:
            try:
                owner = int(env.get(OWNER_ENV, "0"))
            except ValueError:
                owner = 0
            found[int(entry.name)] = (env[RUN_ENV], owner)
    return found


@dataclass
class SweepResult:
    processes: list[tuple[int, str]] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    network: list[str] = field(default_factory=list)


def sweep(*, dry_run: bool = False) -> SweepResult:
    """Kill and remove what dead runs left behind (see the module docstring)."""
    from harness.nodeagent import network, volumes

    result = SweepResult()
    procs = run_processes()
    live = live_runs() | {run for run, owner in procs.values() if owner > 0 and pid_alive(owner)}
    for pid, (run, _owner) in sorted(procs.items()):
        if run in live or pid == os.getpid():
            continue
        result.processes.append((pid, run))
        if not dry_run:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for f in sorted(runs_dir().glob("*.json")):
        if f.stem in live:
            continue
        result.runs.append(f.stem)
        try:
            folder = Path(json.loads(f.read_text())["run_dir"])
        except (OSError, ValueError, KeyError):
            folder = None
        if folder is not None and folder.exists():
            result.folders.append(folder)
            if not dry_run:
                shutil.rmtree(folder, ignore_errors=True)
        if not dry_run:
            f.unlink(missing_ok=True)
            result.folders += [Path(p) for p in volumes.sweep_memory(f.stem)]
    if os.geteuid() == 0 and shutil.which("ip"):
        for run in sorted(network.runs_on_host() - live):
            owner = network.bridge_owner(run)
            if owner > 0 and pid_alive(owner):
                continue  # starting up (no process yet) or running: its owner is alive
            if dry_run:
                result.network += [f"netns {n}" for n in network.run_netns(run)]
                result.network.append(f"link {network.bridge_name(run)}")
            else:
                result.network += network.sweep_run(run)
    return result
