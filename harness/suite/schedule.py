"""Longest first: the suites' plan (expected seconds per test) and the pytest-xdist
scheduler that uses it.

Every worker collects the suites and writes the plan (node id -> expected seconds, from
``needs_time``: :mod:`harness.suite.plan`) to ``<run dir>/.plan.json``.
:class:`LongestFirst` then assigns the tests to the workers before any runs, longest
first, each to the worker with the least expected work so far (LPT), and sends each
worker its whole list at once: a 34-minute scale-to-zero suite starts at once instead
of behind shorter suites on its worker. :func:`makespan` is the expected wall time of
such a schedule, and :func:`workers_for` the fewest workers whose schedule takes about
as long as the longest test.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PLAN = ".plan.json"
DEFAULT_EXPECTED_S = 60.0
"""A test without ``needs_time`` is planned at this."""


def run_dir_of(config: Any) -> Path:
    """The run's folder (``--report-dir``/``--run-id``) of a pytest config: where the plan,
    the case parts and the report go."""
    return Path(config.option.hx_report_dir).resolve() / str(config.option.hx_run_id)


def write_plan(run_dir: Path, expected: Mapping[str, float]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / PLAN
    tmp = path.with_name(f"{PLAN}.{os.getpid()}")
    tmp.write_text(json.dumps({k: round(float(v), 1) for k, v in expected.items()},
                              indent=1))
    tmp.replace(path)
    return path


def read_plan(run_dir: Path) -> dict[str, float]:
    try:
        return {str(k): float(v) for k, v in json.loads((run_dir / PLAN).read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def assign(expected: Sequence[float], workers: int) -> list[list[int]]:
    """Indices of ``expected`` per worker: longest first, each to the least loaded
    worker (ties: the lower worker), each worker's list longest first."""
    n = max(1, workers)
    loads = [0.0] * n
    out: list[list[int]] = [[] for _ in range(n)]
    for i in sorted(range(len(expected)), key=lambda i: (-expected[i], i)):
        w = min(range(n), key=lambda k: (loads[k], k))
        out[w].append(i)
        loads[w] += expected[i]
    return out


def makespan(expected: Sequence[float], workers: int) -> float:
    """Expected wall time of the longest-first schedule on ``workers``."""
    return max((sum(expected[i] for i in part) for part in assign(expected, workers)),
               default=0.0)


def workers_for(expected: Sequence[float], *, at_least: int = 1, at_most: int = 8,
                margin: float = 120.0) -> int:
    """The fewest workers (within the bounds) whose schedule takes at most ``margin``
    seconds longer than the longest test."""
    if not expected:
        return at_least
    goal = max(expected) + margin
    for n in range(max(1, at_least), at_most + 1):
        if makespan(expected, n) <= goal:
            return n
    return at_most


class LongestFirst:
    """pytest-xdist scheduler: the whole collection assigned at once, longest first
    (see the module docstring); built on xdist's ``LoadScheduling`` bookkeeping."""

    def __new__(cls, config: Any, log: Any = None) -> Any:
        from xdist.scheduler import LoadScheduling

        class _Scheduler(LoadScheduling):
            def schedule(self) -> None:
                assert self.collection_is_completed
                if self.collection is not None:
                    for node in self.nodes:
                        self.check_schedule(node)
                    return
                if not self._check_nodes_have_same_collection():
                    self.log("**Different tests collected, aborting run**")
                    return
                self.collection = next(iter(self.node2collection.values()))
                self.pending[:] = range(len(self.collection))
                if not self.collection:
                    return
                self.maxschedchunk = len(self.collection)
                plan = read_plan(run_dir_of(config))
                expected = [plan.get(nodeid, DEFAULT_EXPECTED_S) for nodeid in self.collection]
                for node, part in zip(self.nodes, assign(expected, len(self.nodes)),
                                      strict=False):
                    if part:
                        for i in part:
                            self.pending.remove(i)
                        self.node2pending[node].extend(part)
                        node.send_runtest_some(part)
                for node in self.nodes:
                    node.shutdown()

        return _Scheduler(config, log)
