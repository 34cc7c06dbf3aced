"""Fixtures shared by every test folder: one in-process emulator per session (bookmarks
every 0.5 s) and a kubeconfig for it. The folders add their own clients and namespaces
(``tests/emulator/conftest.py``, ``tests/kube/conftest.py``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.emulator import Emulator, ServerSettings

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with Emulator(settings=ServerSettings(bookmark_interval_s=0.5)) as emu:
        yield emu


@pytest.fixture(scope="session")
def kubeconfig(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return emulator.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
