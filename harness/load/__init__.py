"""Load generation: profiles, shape math, the Locust child-process runner, results.

``run(profile, target_url, host_header, out_dir) -> LoadResult`` is the entry point
(:mod:`harness.load.runner`). Locust itself is only ever imported in a child process
(``harness/load/child/locustfile.py``); importing this package never imports Locust or gevent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.load.profile import LoadProfile, read_load_profile
    from harness.load.result import LoadResult
    from harness.load.runner import run

__all__ = ["LoadProfile", "LoadResult", "read_load_profile", "run"]

_WHERE = {
    "LoadProfile": "harness.load.profile",
    "read_load_profile": "harness.load.profile",
    "LoadResult": "harness.load.result",
    "run": "harness.load.runner",
}


def __getattr__(name: str) -> Any:  # lazy: keep the Locust child's imports light
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(name)
