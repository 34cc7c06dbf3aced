"""Fixtures for harness.kube against the session's emulator (``tests/conftest.py``): a
:class:`Kube` on it with a run id, and a fresh harness namespace per test. Faults are
cleared after every test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.emulator import Emulator
from harness.kube.client import Kube, RetryPolicy, load_api_client
from harness.kube.namespaces import create_namespace, new_run_id
from harness.kube.safety import Guard

FAST_RETRY = RetryPolicy(attempts=6, base_s=0.01, max_backoff_s=0.2, deadline_s=10.0)


@pytest.fixture
def run_id() -> str:
    return new_run_id()


@pytest.fixture
def kube(kubeconfig: Path, emulator: Emulator, run_id: str) -> Iterator[Kube]:
    api, context = load_api_client(kubeconfig)
    guard = Guard(context, mode="current", allowed={context}, run_id=run_id)
    k = Kube(api, context=context, guard=guard, retry=FAST_RETRY)
    yield k
    emulator.faults.clear()
    k.close()


@pytest.fixture
def namespace(kube: Kube, run_id: str, request: pytest.FixtureRequest,
              emulator: Emulator) -> Iterator[str]:
    name = create_namespace(kube, run_id, request.node.name)
    yield name
    emulator.faults.clear()
    if emulator.store.try_get("namespaces", name) is not None:
        emulator.store.delete("namespaces", name)
