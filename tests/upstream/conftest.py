"""A live upstream cluster for the tests in this folder: ``harness cluster up --upstream``
in a child process (as a user runs it), its kubeconfig, ``kubectl``, and on the way out
``harness cluster down`` with a check that nothing of the run is left
(:func:`run_leftovers`). Tests marked ``own_cluster`` start their own (:func:`start_upstream`)
and run first, before the shared one exists.

Opt-in (``HARNESS_UPSTREAM=1``, e.g. ``make test-upstream``): it needs root, Linux and the
built control plane (``make upstream``); without the variable the folder is skipped.

One upstream cluster runs per host (198.18.0.0/15 and kube-proxy's nftables tables are
host-wide), so the session first takes the host's lock file :data:`HOST_LOCK` (once
collected, before the first test and outside its timeout) and waits up to
``HARNESS_UPSTREAM_LOCK_WAIT`` seconds (default 1800) for another test session to finish.
The clusters the tests start run inside the session's slot (``harness cluster up
--upstream`` sees that its ancestor holds it: :mod:`harness.upstream.hostlock`); a
hand-run cluster takes the slot itself.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO

import pytest
from upstream_run import Upstream, harness_cli, run_leftovers, start_upstream

from harness.errors import UserError
from harness.upstream.hostlock import hold, lock_path, wait_s

HOST_LOCK = lock_path()      # the one place: harness.upstream.hostlock
LOCK_WAIT_S = wait_s()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "own_cluster: starts and ends its own upstream "
                            "cluster (runs before the session's shared one is started)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("HARNESS_UPSTREAM") == "1":
        # one cluster per host: the tests with their own run before the shared one starts
        items.sort(key=lambda item: item.get_closest_marker("own_cluster") is None)
        return
    skip = pytest.mark.skip(reason="needs a live upstream cluster: HARNESS_UPSTREAM=1 "
                                   "(make test-upstream; root, Linux, Go)")
    for item in items:
        if "tests/upstream/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)


_HELD = ExitStack()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Take the host's one upstream-cluster slot before the first test, outside any test's
    timeout (a wait for another session's cluster can be long), when live upstream tests
    were collected; held until the session ends (:func:`harness.upstream.hostlock.hold`)."""
    live = [i for i in session.items if "tests/upstream/" in str(i.fspath).replace(os.sep, "/")]
    if os.environ.get("HARNESS_UPSTREAM") != "1" or _HELD_FILE or not live \
            or session.config.option.collectonly:
        return
    report = session.config.pluginmanager.get_plugin("terminalreporter")

    def say(line: str) -> None:
        if report is not None:
            report.write_line(f"tests/upstream: {line}")

    try:
        _HELD_FILE.append(_HELD.enter_context(hold(say, timeout_s=LOCK_WAIT_S)))
    except UserError as exc:
        raise pytest.UsageError(str(exc)) from None


_HELD_FILE: list[IO[str]] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _HELD.close()
    _HELD_FILE.clear()


@pytest.fixture(scope="session")
def host_lock() -> None:
    """The host's one upstream-cluster slot (taken at the end of collection)."""
    assert _HELD_FILE, f"{HOST_LOCK} not held: run with HARNESS_UPSTREAM=1"


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory, host_lock: None) -> Iterator[Upstream]:
    state_dir = tmp_path_factory.mktemp("upstream-state")
    proc, state = start_upstream(state_dir)
    run_id = state["run_id"]
    try:
        yield Upstream(Path(state["kubeconfig"]), state, tmp_path_factory.mktemp("kcache"))
    finally:
        down = harness_cli("cluster", "down", "--state-dir", str(state_dir),
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, _ = down.communicate(timeout=120)
        assert proc.wait(120) == 0, out
        assert run_leftovers(run_id, state_dir) == {}, "the run left things behind"
