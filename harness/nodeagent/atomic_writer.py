"""Kubelet's atomic writer: the files of a configMap, secret, downwardAPI or projected
volume, laid out so a reader never sees a half-written update.

The volume's folder holds one timestamped folder ``..2026_01_01_00_00_00.<random>`` with
the files, a symlink ``..data`` to it, and for each top-level name of the payload a symlink
``<name> -> ..data/<name>``. An update writes a new timestamped folder, points a fresh
``..data_tmp`` symlink at it and renames that over ``..data`` (one atomic step), then adds
and removes the top-level symlinks and deletes the old folder: what kubelet's
``pkg/volume/util/atomic_writer.go`` does, so programs that watch ``..data`` (Knative's and
KServe's config and certificate watchers) see the same events they see on a kubelet.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

DATA = "..data"
DATA_TMP = "..data_tmp"


@dataclass(frozen=True)
class File:
    """One file of a payload: its bytes and its permission bits."""

    data: bytes
    mode: int = 0o644


class PayloadError(ValueError):
    """A payload path kubelet refuses (absolute, with ``..``, or starting with ``..``)."""


def check_path(path: str) -> None:
    """Kubelet's ``validatePath``: relative, no ``..`` element, not starting with ``..``."""
    if not path:
        raise PayloadError("invalid path: must not be empty")
    if len(path) > 4096:
        raise PayloadError(f"invalid path: must be less than or equal to 4096 characters: {path}")
    if PurePosixPath(path).is_absolute():
        raise PayloadError(f"invalid path: must be relative path: {path}")
    if ".." in PurePosixPath(path).parts:
        raise PayloadError(f"invalid path: must not contain '..': {path}")
    if path.startswith(".."):
        raise PayloadError(f"invalid path: must not start with '..': {path}")


def current(target: Path) -> dict[str, File]:
    """The payload now published in ``target`` (empty when nothing is)."""
    data = target / DATA
    if not data.is_symlink():
        return {}
    root = target / os.readlink(data)
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            out[str(path.relative_to(root))] = File(path.read_bytes(),
                                                    path.stat().st_mode & 0o7777)
    return out


def write(target: Path, payload: dict[str, File]) -> bool:
    """Publish ``payload`` in ``target``; False (and nothing touched) when it is unchanged."""
    for path in payload:
        check_path(path)
    target.mkdir(parents=True, exist_ok=True)
    if (target / DATA).is_symlink() and current(target) == payload:
        return False
    old = os.readlink(target / DATA) if (target / DATA).is_symlink() else None
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    new = Path(tempfile.mkdtemp(prefix=stamp, dir=target))
    os.chmod(new, 0o755)
    for rel, f in payload.items():
        path = new / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f.data)
        os.chmod(path, f.mode)
    tmp = target / DATA_TMP
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(new.name, tmp)
    os.rename(tmp, target / DATA)
    tops = {PurePosixPath(rel).parts[0] for rel in payload}
    for top in tops:
        link = target / top
        if not link.is_symlink():
            os.symlink(f"{DATA}/{top}", link)
    for entry in os.listdir(target):
        if not entry.startswith("..") and entry not in tops and (target / entry).is_symlink():
            (target / entry).unlink()
    if old is not None:
        shutil.rmtree(target / old, ignore_errors=True)
    return True
