"""Fixtures for the emulator's tests: an in-process emulator per session, a kubeconfig
for it, an official-client ``ApiClient`` (the venv's version), and a fresh namespace."""

from __future__ import annotations

import os
import uuid
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


@pytest.fixture
def api_client(kubeconfig: Path) -> Iterator[object]:
    from kubernetes import config

    api = config.new_client_from_config(config_file=str(kubeconfig))
    api.configuration.proxy = None
    yield api
    api.close()


@pytest.fixture
def namespace(emulator: Emulator) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    emulator.store.create("namespaces", {"metadata": {"name": name}})
    yield name
    if emulator.store.try_get("namespaces", name) is not None:
        emulator.store.delete("namespaces", name)
