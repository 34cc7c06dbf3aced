"""Which host paths a container sees at which ``mountPath``: its ``volumeMounts`` resolved
against the pod's volume folders (``subPath``, ``subPathExpr``, ``readOnly``), and the
command line that makes them appear.

The mounts are made by :mod:`harness.nodeagent.mountns`, run by ``ip netns exec`` (which
has already given the process its own mount namespace, ``/`` a slave of the host's) just
before it execs the container's command: they are the container's alone and vanish with it.
Nothing is created on the host's own filesystem at a mountPath (see that module).
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

SETUP = Path(__file__).with_name("mountns.py")


class MountError(RuntimeError):
    """A volumeMount that cannot be made (kubelet's CreateContainerConfigError words)."""


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool = False


_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined variables replaced, ``$$`` -> ``$``,
    anything else left as written."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return _VAR.sub(sub, text)


def _check_subpath(sub: str, what: str) -> None:
    p = PurePosixPath(sub)
    if p.is_absolute():
        raise MountError(f"{what} {sub!r} must be a relative path")
    if ".." in p.parts:
        raise MountError(f"{what} {sub!r} must not contain '..'")


def plan(container: dict[str, Any], volumes: dict[str, Path],
         env: dict[str, str] | None = None) -> list[Mount]:
    """The container's mounts, parents before children. ``volumes``: volume name -> its
    folder on the host. A ``subPath`` missing from a writable volume is created there as a
    folder (as kubelet does); one that leads outside its volume is refused."""
    mounts = []
    for vm in container.get("volumeMounts") or []:
        if vm["name"] not in volumes:
            raise MountError(f"cannot find volume {vm['name']!r} to mount into container "
                             f"{container['name']!r}")
        root = volumes[vm["name"]]
        source = root
        sub = vm.get("subPath") or ""
        if vm.get("subPathExpr"):
            sub = expand(vm["subPathExpr"], env or {})
            _check_subpath(sub, "subPathExpr")
        elif sub:
            _check_subpath(sub, "subPath")
        if sub:
            source = root / sub
            if not os.path.lexists(source):
                source.mkdir(parents=True, exist_ok=True)
            real, real_root = os.path.realpath(source), os.path.realpath(root)
            if real != real_root and not real.startswith(real_root.rstrip("/") + "/"):
                raise MountError(f"subpath {str(source)!r} not within volume path "
                                 f"{str(root)!r}")
        mounts.append(Mount(str(source), vm["mountPath"], bool(vm.get("readOnly"))))
    return sorted(mounts, key=lambda m: len(PurePosixPath(m.target).parts))


def write_plan(path: Path, mounts: list[Mount], cwd: str | None = None) -> Path:
    """The setup step's input: the mounts, the working folder, this process's mount
    namespace (the setup refuses to mount anything in it) and an empty stage folder beside
    the plan (a new root, should a mountPath need a missing top-level folder)."""
    stage = path.with_suffix(".root")
    stage.mkdir(exist_ok=True)
    path.write_text(json.dumps({"host_mnt_ns": os.readlink("/proc/self/ns/mnt"),
                                "mounts": [asdict(m) for m in mounts], "cwd": cwd,
                                "stage": str(stage)}))
    return path


def wrap(argv: list[str], plan_file: Path) -> list[str]:
    """``argv`` preceded by the setup step (stdlib only, isolated mode: fast to start)."""
    return [sys.executable, "-I", "-S", str(SETUP), str(plan_file), "--", *argv]
