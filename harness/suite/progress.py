"""Progress while the suites run: what each running test does, and for how long.

Each test (in whichever xdist worker) keeps ``<run dir>/.progress/<test>.json`` up to
date every :data:`WRITE_EVERY_S` seconds with a :class:`ProgressWriter`: the test, its
expected seconds (the plan's ``needs_s``), when it started, what it does now (``waits for
scale to zero``) with that step's expected seconds, and the ready and desired pods and
panic from its recording so far; at the end the file says ``done`` with the outcome.
``harness conformance`` reads the folder (:func:`read_progress`) and shows one line per
running test (:func:`line`): in a terminal as a live display (rich), otherwise as plain
lines every :data:`PLAIN_EVERY_S` seconds, for CI logs (:class:`ProgressDisplay`).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from harness.durations import format_duration

FOLDER = ".progress"
WRITE_EVERY_S = 2.0
PLAIN_EVERY_S = 30.0


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return format_duration(max(0.0, round(float(seconds))))


class ProgressWriter:
    """Worker side: one test's progress file, rewritten every :data:`WRITE_EVERY_S`."""

    def __init__(self, run_dir: Path, test: str, expected_s: float | None,
                 state: Callable[[], Mapping[str, Any]]) -> None:
        self.path = run_dir / FOLDER / f"{test}.json"
        self.test = test
        self.expected_s = expected_s
        self.started = time.time()
        self.state = state
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ProgressWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.write()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"progress-{self.test}")
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(WRITE_EVERY_S):
            self.write()

    def write(self, **extra: Any) -> None:
        try:
            state = dict(self.state())
        except Exception:  # noqa: BLE001 - progress never breaks a test
            state = {}
        rec = {"test": self.test, "started": self.started, "expected_s": self.expected_s,
               "updated": time.time(), "pid": os.getpid(), **state, **extra}
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(rec, default=str))
            tmp.replace(self.path)
        except OSError:
            pass

    def stop(self, outcome: str) -> float:
        """Stop the thread and mark the test done; its seconds."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        took = time.time() - self.started
        self.write(done=True, outcome=outcome, took_s=round(took, 1))
        return took


def read_progress(run_dir: Path) -> list[dict[str, Any]]:
    """Every test's last progress record (running and done), oldest start first."""
    out = []
    for path in sorted((run_dir / FOLDER).glob("*.json")):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return sorted(out, key=lambda r: float(r.get("started") or 0))


def line(rec: Mapping[str, Any], now: float | None = None) -> str:
    """``scale_to_zero-...: waits for scale to zero (3m02s of 33m06s) | 5m10s / 34m50s |
    ready 1, desired 1, panic no``."""
    now = time.time() if now is None else now
    elapsed = now - float(rec.get("started") or now)
    phase = str(rec.get("phase") or "runs its check")
    if rec.get("phase_started") and rec.get("phase"):
        step = f" ({_dur(now - float(rec['phase_started']))} of " \
               f"{_dur(rec.get('phase_expected_s'))})" if rec.get("phase_expected_s") \
            is not None else f" ({_dur(now - float(rec['phase_started']))})"
        phase += step
    pods = []
    for key in ("ready", "desired"):
        pods.append(f"{key} {rec[key]}" if rec.get(key) is not None else f"{key} -")
    panic = rec.get("panic")
    pods.append("panic " + ("-" if panic is None else "yes" if panic else "no"))
    return (f"{rec.get('test')}: {phase} | {_dur(elapsed)} / {_dur(rec.get('expected_s'))} "
            f"| {', '.join(pods)}")


def running(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if not r.get("done")]


def summary(records: list[dict[str, Any]], now: float, t0: float) -> str:
    done = [r for r in records if r.get("done")]
    return (f"[{_dur(now - t0)}] {len(done)} done, {len(running(records))} running")


class ProgressDisplay:
    """Parent side: one line per running test, live in a terminal (rich), else a plain
    block every :data:`PLAIN_EVERY_S` seconds. Text that passes through (pytest's own
    output) goes to :meth:`write`, so the two never share a line."""

    def __init__(self, run_dir: Path, *, stream: IO[str] | None = None,
                 live: bool | None = None, every_s: float = PLAIN_EVERY_S) -> None:
        self.run_dir = run_dir
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.every_s = every_s
        self.t0 = time.time()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._mid_line = False
        self._partial = ""
        self._live: Any = None

    # ------------------------------------------------------------ output passing through
    def write(self, text: str) -> None:
        with self._lock:
            if self._live is not None:
                self._partial += text
                while "\n" in self._partial:
                    head, self._partial = self._partial.split("\n", 1)
                    self._live.console.print(head, markup=False, highlight=False,
                                             soft_wrap=True)
                return
            self.stream.write(text)
            self.stream.flush()
            if text:
                self._mid_line = not text.endswith("\n")

    # ------------------------------------------------------------ the display
    def lines(self, now: float | None = None) -> list[str]:
        now = time.time() if now is None else now
        recs = read_progress(self.run_dir)
        return [summary(recs, now, self.t0)] + ["  " + line(r, now) for r in running(recs)]

    def plain(self) -> None:
        text = "\n".join("progress " + ln for ln in self.lines())
        with self._lock:
            self.stream.write(("\n" if self._mid_line else "") + text + "\n")
            self.stream.flush()
            self._mid_line = False

    def _renderable(self) -> Any:
        from rich.text import Text

        return Text("\n".join(self.lines()), style="cyan")

    def _run(self) -> None:
        while not self._stop.wait(1.0 if self._live is not None else self.every_s):
            if self._live is not None:
                self._live.update(self._renderable())
            else:
                self.plain()

    def start(self) -> ProgressDisplay:
        if self.live:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.stream, highlight=False)
            self._live = Live(self._renderable(), console=console, refresh_per_second=2,
                              transient=True, redirect_stdout=False, redirect_stderr=False)
            self._live.start()
        self._thread = threading.Thread(target=self._run, daemon=True, name="progress")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            if self._live is not None:
                if self._partial:
                    self._live.console.print(self._partial, markup=False, highlight=False)
                    self._partial = ""
                self._live.stop()
                self._live = None
