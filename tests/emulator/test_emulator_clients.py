"""The official client at three major versions (30.x, 36.x, 37.x) against one emulator.

A version the venv does not hold is installed once into ``.cache/kubernetes-NN``
(git-ignored) and reused; the venv's own client (36.x: 37.x needs python-dateutil 3, which
botocore, under moto, refuses) is used for its own major. Each version runs
``client_conformance.py`` in a subprocess with its client first on PYTHONPATH. A version
that cannot be installed is skipped, saying why.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.emulator import Emulator, ServerSettings

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache"
SCRIPT = Path(__file__).with_name("client_conformance.py")
VERSIONS = {"30": "kubernetes==30.1.*", "36": "kubernetes==36.*", "37": "kubernetes==37.*"}


def client_path(major: str) -> Path | None:
    """Folder holding that client (None: the venv's own); skip if it cannot be installed."""
    import kubernetes

    if kubernetes.__version__.startswith(f"{major}."):
        return None
    spec = VERSIONS[major]
    target = CACHE / f"kubernetes-{major}"
    if (target / "kubernetes" / "__init__.py").exists():
        return target
    CACHE.mkdir(exist_ok=True)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--target", str(target), spec], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.skip(f"installing {spec} took over 300 s")
    if done.returncode != 0:
        pytest.skip(f"cannot install {spec} into {target}: {done.stderr.strip()[-400:]}")
    return target


@pytest.fixture(scope="module")
def short_history_kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A server keeping only 200 changes, so the 410 check can outrun its history."""
    with Emulator(history=200, settings=ServerSettings(bookmark_interval_s=0.5)) as emu:
        yield emu.write_kubeconfig(tmp_path_factory.mktemp("cv") / "config")


@pytest.mark.slow
@pytest.mark.parametrize("major", sorted(VERSIONS))
def test_official_client_conformance(major: str, short_history_kubeconfig: Path) -> None:
    path = client_path(major)
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
    env.pop("PYTHONPATH", None)
    if path is not None:
        env["PYTHONPATH"] = str(path)
    done = subprocess.run([sys.executable, str(SCRIPT), str(short_history_kubeconfig)],
                          capture_output=True, text=True, timeout=180, env=env)
    out = done.stdout + done.stderr
    assert f"kubernetes client {major}." in out, out
    assert done.returncode == 0, f"{done.returncode} check(s) failed:\n{out}"
    assert out.count("\nok   ") >= 10, out
