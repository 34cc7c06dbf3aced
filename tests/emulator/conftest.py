"""Fixtures for the emulator's tests: an official-client ``ApiClient`` (the venv's version)
on the session's emulator (``tests/conftest.py``), and a fresh namespace."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.emulator import Emulator


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
