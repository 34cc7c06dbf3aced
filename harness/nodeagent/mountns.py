"""The container's mount setup: runs inside the mount namespace ``ip netns exec`` made,
makes the container's volume mounts, then execs the container's command.

``python -I -S mountns.py PLAN -- COMMAND...`` (standard library only, so it starts fast;
:mod:`harness.nodeagent.mounts` writes PLAN). It first checks that its mount namespace is
not the node agent's (``ip netns exec`` unshares one, with ``/`` made a recursive slave):
a mount made here can never reach the host. Then, parents first, each volume is
bind-mounted at its mountPath (and remounted read-only when asked).

A mountPath whose folder does not exist on the host (``/var/run/secrets/...``,
``/mnt/models``, ``/tmp/k8s-webhook-server/serving-certs``) is never created on the host:
the nearest existing ancestor is *mirrored* here: a tmpfs is mounted over it and each of
its entries is bind-mounted back (recursively, so the mounts below it stay), symlinks
recreated; the missing folders are then made in that tmpfs, visible to this container only.
When that ancestor is ``/`` itself, the mirror is built on the plan's ``stage`` folder (an
empty folder in the pod's run folder) and the process chroots into it.
A mountPath inside a writable volume mounted before it is made in that volume (as runc
makes mountpoints in the container's filesystem).
"""

from __future__ import annotations

import ctypes
import json
import os
import sys

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384

_libc = ctypes.CDLL(None, use_errno=True)


def _mount(source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    def enc(s: str | None) -> bytes | None:
        return s.encode() if s is not None else None

    if _libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags),
                   enc(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


class Setup:
    def __init__(self, stage: str | None = None) -> None:
        self.stage = stage               # an empty folder for a new root, if one is needed
        self.private: set[str] = set()   # folders that exist only in this namespace
        self.writable: list[str] = []    # writable volumes bound here (mountpoints inside
        #                                  them are made in the volume, as runc does)
        self._fds: list[int] = []

    def mirror(self, folder: str) -> None:
        """A tmpfs over ``folder`` holding the same entries, each bound back."""
        fd = os.open(folder, os.O_PATH | os.O_DIRECTORY)
        self._fds.append(fd)
        names = os.listdir(folder)
        mode = os.stat(folder).st_mode & 0o7777
        # a mount over / is not seen through the process's root: build the new root on
        # the stage folder and chroot into it once it is filled
        into = folder
        if folder == "/":
            if not self.stage:
                raise OSError(0, "a mountPath under a missing top-level folder needs a stage")
            into = self.stage
        _mount("tmpfs", into, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode:o}")
        for name in names:
            src = f"/proc/self/fd/{fd}/{name}"
            dst = os.path.join(into, name)
            if os.path.islink(src):
                os.symlink(os.readlink(src), dst)
                continue
            if os.path.isdir(src):
                os.mkdir(dst)
            else:
                open(dst, "w").close()
            _mount(src, dst, None, MS_BIND | MS_REC)
        if into != folder:
            os.chroot(into)
            os.chdir("/")
        self.private.add(folder)

    def ensure(self, target: str, is_dir: bool) -> str:
        """``target`` exists (made in this namespace only when missing); its real path."""
        if os.path.exists(target):
            return os.path.realpath(target)
        missing: list[str] = []
        ancestor = target
        while not os.path.exists(ancestor):
            ancestor, name = os.path.split(ancestor)
            missing.insert(0, name)
        real = os.path.realpath(ancestor)
        inside = any(real == v or real.startswith(v.rstrip("/") + "/") for v in self.writable)
        if real not in self.private and not inside:
            self.mirror(real)
        path = real
        for i, name in enumerate(missing):
            path = os.path.join(path, name)
            if i < len(missing) - 1 or is_dir:
                os.mkdir(path, 0o755)
                self.private.add(path)
            else:
                open(path, "w").close()
        return path

    def bind(self, source: str, target: str, read_only: bool) -> None:
        where = self.ensure(target, os.path.isdir(source))
        _mount(source, where, None, MS_BIND | MS_REC)
        if read_only:
            _mount(None, where, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
        elif os.path.isdir(source):
            self.writable.append(where)

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: mountns.py PLAN -- COMMAND...", file=sys.stderr)
        return 2
    with open(argv[1]) as fh:
        plan = json.load(fh)
    if os.readlink("/proc/self/ns/mnt") == plan["host_mnt_ns"]:
        print("mountns: refusing to mount in the node agent's own mount namespace (not "
              "under ip netns exec?)", file=sys.stderr)
        return 126
    setup = Setup(plan.get("stage"))
    try:
        for m in plan["mounts"]:
            setup.bind(m["source"], m["target"], m["read_only"])
    except OSError as exc:
        print(f"mountns: {exc}", file=sys.stderr)
        return 126
    setup.close()
    if plan.get("cwd"):
        os.chdir(plan["cwd"])
    command = argv[3:]
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"mountns: exec {command[0]}: {exc}", file=sys.stderr)
        return 127
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
