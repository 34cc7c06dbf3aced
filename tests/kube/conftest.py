"""Fixtures for harness.kube against the session's emulator (``tests/conftest.py``): a
:class:`Kube` on it with a run id, and a fresh harness namespace per test. Faults are
cleared after every test.

With ``HARNESS_KUBE_KUBECONFIG=<file>`` the same tests run against that live cluster
instead (``tests/upstream`` runs them so against the upstream cluster): tests that drive
the emulator's fault injection or read its store (they ask for ``emulator``) are skipped
there, and namespaces are deleted through the API."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.emulator import Emulator
from harness.kube.client import Kube, RetryPolicy, load_api_client
from harness.kube.namespaces import create_namespace, delete_namespace, new_run_id
from harness.kube.safety import Guard

FAST_RETRY = RetryPolicy(attempts=6, base_s=0.01, max_backoff_s=0.2, deadline_s=10.0)
LIVE = os.environ.get("HARNESS_KUBE_KUBECONFIG")

if LIVE:
    @pytest.fixture(scope="session")
    def emulator() -> Emulator:
        pytest.skip("drives the emulator's faults or store: emulator only")

    @pytest.fixture(scope="session")
    def kubeconfig() -> Path:
        return Path(LIVE)


@pytest.fixture
def run_id() -> str:
    return new_run_id()


@pytest.fixture
def kube(kubeconfig: Path, request: pytest.FixtureRequest, run_id: str) -> Iterator[Kube]:
    api, context = load_api_client(kubeconfig)
    guard = Guard(context, mode="current", allowed={context}, run_id=run_id)
    k = Kube(api, context=context, guard=guard, retry=FAST_RETRY)
    emulator: Emulator | None = None if LIVE else request.getfixturevalue("emulator")
    yield k
    if emulator is not None:
        emulator.faults.clear()
    k.close()


@pytest.fixture
def namespace(kube: Kube, run_id: str, request: pytest.FixtureRequest) -> Iterator[str]:
    name = create_namespace(kube, run_id, request.node.name)
    emulator: Emulator | None = None if LIVE else request.getfixturevalue("emulator")
    yield name
    if emulator is None:
        delete_namespace(kube, name, wait=False)
        return
    emulator.faults.clear()
    if emulator.store.try_get("namespaces", name) is not None:
        emulator.store.delete("namespaces", name)
