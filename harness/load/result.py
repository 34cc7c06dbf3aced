"""LoadResult: what one load run produced, and where its files are."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.load.profile import LoadProfile
from harness.load.records import read_records


@dataclass(frozen=True)
class LoadResult:
    """Outcome of :func:`harness.load.run`.

    ``per_second`` has one row per second of the profile (``second, mode, offered,
    achieved, sent, errors, not_sent, concurrency, p50_ms, p99_ms``); ``summary`` the totals
    (``requests``, ``errors``, ``latency_ms``, ``rate``/``concurrency`` offered vs achieved,
    ``pods``); ``kept_up`` is False with ``reasons`` when the generator could not produce
    what the profile asked (then the service's numbers are not to be trusted).
    """

    profile: LoadProfile
    target_url: str
    out_dir: Path
    records_path: Path
    per_second: pd.DataFrame
    summary: dict[str, Any]
    kept_up: bool
    reasons: tuple[str, ...] = ()
    origin: float | None = None
    workers: int = 0
    exit_code: int | None = 0
    timed_out: bool = False
    wall_s: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)

    def records(self) -> pd.DataFrame:
        """Every per-request record (see :mod:`harness.load.records` for the columns)."""
        return read_records(self.records_path)

    @property
    def requests(self) -> int:
        return int(self.summary.get("requests", 0))

    @property
    def errors(self) -> int:
        return int(self.summary.get("errors", 0))

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile.name,
            "profile_source": self.profile.source,
            "target_url": self.target_url,
            "records": str(self.records_path),
            "origin": self.origin,
            "duration_s": self.profile.total,
            "wall_s": round(self.wall_s, 3),
            "workers": self.workers,
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "kept_up": self.kept_up,
            "reasons": list(self.reasons),
            "cpu": self.cpu,
            **self.summary,
        }
