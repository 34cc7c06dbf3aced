"""Python environments of the images that are Python programs with dependencies of their own
(an image-table entry's ``venv``: a pinned requirements file), built on first use: the
node agent's "image pull" for them.

Why an environment per image and not the harness's: KServe's storage initializer needs
``kserve-storage`` with boto3, google-cloud-storage, azure-*, huggingface-hub, dulwich and
their ~60 pins (170 MB); in the project's venv they would fight the harness's own pins
(botocore for moto, cryptography, aiohttp) and every harness install would carry them. A
real image has its own environment too, so the stand-in keeps the same boundary: the
entry point runs with this environment's interpreter and sees only its packages.

Each environment is ``$XDG_CACHE_HOME/harness/images/<image>-<hash>/`` (default
``~/.cache``), ``<hash>`` over the requirements file and the interpreter's version, so a new
pin makes a new one. It is made with ``python -m venv --without-pip`` from the interpreter
running the harness (3.11; kserve-storage wants >= 3.10, < 3.13), and the harness's pip
installs the pinned file into it (``pip --python``; PyPI through pip's own configuration).
A lock file makes two pods or two test sessions pulling at once build it once; it counts
as built only once the stamp ``.complete`` is written, so an interrupted build is removed
and made again. About 2 minutes cold for the storage initializer on 2 cores (35 s with
pip's download cache warm); instant when built.

``python -m harness.nodeagent.images`` (``make images``) builds every environment the
table names.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

BUILD_TIMEOUT_S = 1200.0
STAMP = ".complete"


class ImageEnvError(RuntimeError):
    """The environment could not be built (the message ends with pip's last lines)."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harness" / "images"


def env_dir(image: str, requirements: Path) -> Path:
    """Where ``image``'s environment for these pins lives (built or not)."""
    h = hashlib.sha256(requirements.read_bytes())
    h.update(f"\0{sys.version_info.major}.{sys.version_info.minor}".encode())
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", image).strip("-")
    return cache_root() / f"{slug}-{h.hexdigest()[:12]}"


def _beside(directory: Path, suffix: str) -> Path:
    return directory.parent / (directory.name + suffix)


def python_of(directory: Path) -> Path:
    return directory / "bin" / "python"


def is_built(image: str, requirements: Path) -> bool:
    return (env_dir(image, requirements) / STAMP).is_file()


def ensure(image: str, requirements: Path, *,
           progress: Callable[[str], None] | None = None) -> Path:
    """The interpreter of ``image``'s environment, built first when missing."""
    directory = env_dir(image, requirements)
    if (directory / STAMP).is_file():
        return python_of(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(_beside(directory, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # another builder finishes first
        if not (directory / STAMP).is_file():
            _build(image, requirements, directory, progress)
    return python_of(directory)


def _build(image: str, requirements: Path, directory: Path,
           progress: Callable[[str], None] | None) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    log = _beside(directory, ".log")
    t0 = time.monotonic()
    if progress:
        progress(f"building the Python environment of {image} from {requirements.name} "
                 f"into {directory} (about 2 minutes the first time)")
    steps = [[sys.executable, "-m", "venv", "--without-pip", str(directory)],
             [sys.executable, "-m", "pip", "--python", str(python_of(directory)), "install",
              "--quiet", "--disable-pip-version-check", "-r", str(requirements)]]
    deadline = t0 + BUILD_TIMEOUT_S
    with open(log, "w") as out:
        for argv in steps:
            try:
                code = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL,
                                      timeout=max(1.0, deadline - time.monotonic())).returncode
            except subprocess.TimeoutExpired:
                code = -1
            if code != 0:
                shutil.rmtree(directory, ignore_errors=True)
                tail = log.read_text(errors="replace").strip().splitlines()[-5:]
                raise ImageEnvError(f"cannot build the Python environment of {image} "
                                    f"({' '.join(argv[-3:])} failed; log {log}): "
                                    + " | ".join(tail))
    (directory / STAMP).write_text(f"{image}\n{requirements}\n")
    if progress:
        progress(f"{image}: built in {time.monotonic() - t0:.0f} s")
