"""Run a load profile with Locust in child processes, bounded in time; return a LoadResult.

The harness process never imports Locust (its gevent monkey-patching must not meet the
Kubernetes watches or pytest). :func:`run` validates the profile (a bad file raises
:class:`~harness.errors.UserError` before any process starts), then starts
``python -m locust -f harness/load/child/locustfile.py --headless ...`` in its own process
group: one process, or with ``workers=N`` a master and N worker processes on this
machine (more may join from other machines, see :func:`run_workers`). It watches the
status and records files for the progress line, kills every child it started if the run
outlives the profile plus a margin, and analyses the records at the end.

Files in ``out_dir``: ``records.csv`` (one line per request), ``status.jsonl`` (one line
per second), ``per_second.csv``, ``summary.json``, ``profile.resolved.json`` and
``locust-*.log``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from harness.errors import UserError
from harness.load.profile import LoadProfile, read_load_profile
from harness.load.records import NOT_SENT, RecordTail, read_records
from harness.load.result import LoadResult
from harness.load.stats import per_second, summarize, verdict

LOCUSTFILE = Path(__file__).resolve().parent / "child" / "locustfile.py"
RESOLVED_SUFFIX = ".resolved.json"  # the locustfile reads such a file without re-validating
START_ALLOWANCE = 30.0  # seconds for Locust to start and the workers to connect
DRAIN_MARGIN = 5.0  # as in harness.load.child.control
BOUND_MARGIN = 5.0  # seconds past the drain deadline before the children are killed
KILL_GRACE = 5.0


@dataclass(frozen=True)
class Progress:
    """One update of a running load test (about once a second)."""

    elapsed: float
    total: float
    users: int
    rate: float  # requests sent in the last whole second
    requests: int
    errors: int
    started: bool


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"{url!r} is not an http(s) URL (e.g. http://127.0.0.1:8080)",
                        key="--url")
    return url.rstrip("/")


def _parse_addr(text: str, key: str, default_port: int | None = None) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, str(default_port or "")
    try:
        number = int(port)
    except ValueError:
        raise UserError(f"{text!r} is not HOST:PORT", key=key) from None
    if not host or not 0 < number < 65536:
        raise UserError(f"{text!r} is not HOST:PORT", key=key)
    return host, number


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


class _Children:
    """Child processes, each in its own process group; all killed in :meth:`kill_all`."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.procs: list[subprocess.Popen] = []
        self.logs: list[IO[bytes]] = []

    def start(self, argv: list[str], log: Path) -> subprocess.Popen:
        fh = log.open("wb")
        self.logs.append(fh)
        proc = subprocess.Popen(argv, cwd=self.cwd, env=_child_env(), stdout=fh,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def signal_all(self, sig: int) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass

    def kill_all(self) -> None:
        self.signal_all(signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE
        for p in self.procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        self.signal_all(signal.SIGKILL)
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
                pass
        for fh in self.logs:
            fh.close()


def _locust(locustfile: Path, python: str) -> list[str]:
    return [python, "-m", "locust", "-f", str(locustfile), "--loglevel", "WARNING"]


def run(
    profile: str | Path | LoadProfile,
    target_url: str,
    host_header: str | None = None,
    out_dir: str | Path | None = None,
    *,
    workers: int = 0,
    model: str | None = None,
    master_bind: str | None = None,
    expect_workers: int = 0,
    progress: Callable[[Progress], None] | None = None,
    locustfile: str | Path = LOCUSTFILE,
    python: str = sys.executable,
) -> LoadResult:
    """Play ``profile`` against ``target_url`` and return what happened.

    ``host_header`` is sent as ``Host`` on every request (Knative routing). ``workers=0``
    runs one Locust process; ``workers=N`` a master and N local workers. ``master_bind``
    (``HOST:PORT``) opens the master to workers on other machines and ``expect_workers``
    says how many of those to wait for. ``progress`` is called about once a second.
    """
    prof = profile if isinstance(profile, LoadProfile) else read_load_profile(profile)
    url = _check_url(target_url)
    if workers < 0 or expect_workers < 0:
        raise UserError("must not be negative", key="--workers")
    if expect_workers and not workers and not master_bind:
        raise UserError("remote workers need a master: give --workers or --master-bind",
                        key="--expect-workers")
    out = Path(out_dir) if out_dir is not None else Path("reports") / f"load-{prof.name}"
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    records = out / "records.csv"
    status = out / "status.jsonl"
    for stale in (records, status):
        stale.unlink(missing_ok=True)
    resolved = out / f"profile{RESOLVED_SUFFIX}"
    resolved.write_text(json.dumps(prof.to_json()))

    base = _locust(Path(locustfile), python) + [
        "--headless", "--only-summary", "--host", url,
        "--load-profile", str(resolved), "--records", str(records),
        "--status-file", str(status), "--stop-timeout", f"{prof.timeout + 1:g}",
        "--exit-code-on-error", "0",  # failed requests are the service's; the records hold them
    ]
    if host_header:
        base += ["--host-header", host_header]
    if model:
        base += ["--model", model]
    distributed = workers > 0 or bool(master_bind)
    children = _Children(out)
    t0 = time.monotonic()
    timed_out = False
    try:
        if distributed:
            bind_host, bind_port = (_parse_addr(master_bind, "--master-bind", 5557)
                                    if master_bind else ("127.0.0.1", free_port()))
            main = children.start(base + [
                "--master", "--master-bind-host", bind_host, "--master-bind-port", str(bind_port),
                "--expect-workers", str(workers + expect_workers),
            ], out / "locust-master.log")
            connect = "127.0.0.1" if bind_host in ("*", "0.0.0.0", "") else bind_host
            for i in range(workers):
                children.start(_locust(Path(locustfile), python) + [
                    "--worker", "--master-host", connect, "--master-port", str(bind_port),
                ], out / f"locust-worker-{i}.log")
        else:
            main = children.start(base, out / "locust.log")
        bound = START_ALLOWANCE + prof.total + prof.timeout + DRAIN_MARGIN + BOUND_MARGIN
        timed_out = not _watch(main, records, status, prof, t0 + bound, progress)
        if timed_out:
            children.signal_all(signal.SIGTERM)
    finally:
        children.kill_all()
    wall = time.monotonic() - t0
    return _result(prof, url, out, records, status, main.returncode, timed_out, wall,
                   workers + expect_workers if distributed else 0)


def _watch(
    main: subprocess.Popen, records: Path, status: Path, prof: LoadProfile, deadline: float,
    progress: Callable[[Progress], None] | None,
) -> bool:
    """Wait for the main Locust process; report progress. False if the deadline passed."""
    tail = RecordTail(records)
    per_sec: Counter[int] = Counter()
    total_req = total_err = 0
    last: dict[str, Any] = {}
    status_tail = _LineTail(status)
    while main.poll() is None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
        for line in status_tail.read_new():
            last = line
        if progress is None:
            continue
        new = tail.read_new()
        origin = last.get("origin")
        if len(new):
            sent = ~new["error"].str.startswith(NOT_SENT).fillna(False)
            total_req += int(sent.sum())
            total_err += int((sent & ((new["status"] < 200) | (new["status"] >= 400))).sum())
            if origin:
                for s in (new.loc[sent, "start"] - origin).astype(int):
                    per_sec[int(s)] += 1
        elapsed = float(last.get("elapsed", 0.0)) if last.get("started") else 0.0
        progress(Progress(
            elapsed=min(elapsed, prof.total), total=prof.total, users=int(last.get("users", 0)),
            rate=float(per_sec.get(int(elapsed) - 1, 0)), requests=total_req,
            errors=total_err, started=bool(last.get("started")),
        ))
    return True


class _LineTail:
    """New complete JSON lines of a file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read_new(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        cut = chunk.rfind(b"\n")
        if cut < 0:
            return []
        self.offset += cut + 1
        out = []
        for raw in chunk[:cut].splitlines():
            try:
                out.append(json.loads(raw))
            except ValueError:
                continue
        return out


def _result(
    prof: LoadProfile, url: str, out: Path, records: Path, status: Path, exit_code: int | None,
    timed_out: bool, wall: float, workers: int,
) -> LoadResult:
    lines = _LineTail(status).read_new()
    origin = next((ln["origin"] for ln in reversed(lines) if ln.get("origin")), None)
    final = next((ln for ln in reversed(lines) if ln.get("final")), {})
    cpu: dict[str, float] = {}
    if lines:
        cpu["main"] = max(float(ln.get("cpu", 0.0)) for ln in lines)
    for i, rep in enumerate(final.get("worker_reports", [])):
        if workers:
            cpu[f"worker{rep.get('index', i)}"] = float(rep.get("cpu_max", 0.0))
    recs = read_records(records)
    table = per_second(recs, prof, origin if origin is not None else 0.0)
    summary = summarize(recs, table)
    drained = bool(final.get("drained")) and not timed_out
    v = verdict(table, summary, cpu_max=max(cpu.values(), default=0.0), drained=drained,
                exit_code=exit_code)
    reasons = v.reasons
    if origin is None:
        reasons = ("Locust did not start the profile (see the locust log in "
                   f"{out})",) + reasons
    result = LoadResult(
        profile=prof, target_url=url, out_dir=out, records_path=records, per_second=table,
        summary=summary, kept_up=v.kept_up and origin is not None, reasons=reasons,
        origin=origin, workers=workers, exit_code=exit_code, timed_out=timed_out,
        wall_s=wall, cpu=cpu,
    )
    table.to_csv(out / "per_second.csv", index=False)
    (out / "summary.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return result


def run_workers(
    master: str,
    workers: int,
    *,
    profile: str | Path | LoadProfile | None = None,
    wait: float = 600.0,
    out_dir: str | Path | None = None,
    locustfile: str | Path = LOCUSTFILE,
    python: str = sys.executable,
) -> int:
    """Worker-only mode: ``workers`` Locust workers on this machine join ``master``
    (``HOST:PORT``) and send their records there. Bounded by ``wait`` for the master to
    start plus the profile's length. Returns 0 when every worker exited cleanly."""
    host, port = _parse_addr(master, "--master", 5557)
    if workers < 1:
        raise UserError("worker-only mode needs --workers N with N >= 1", key="--workers")
    prof = (profile if isinstance(profile, LoadProfile)
            else read_load_profile(profile) if profile is not None else None)
    out = Path(out_dir) if out_dir is not None else Path("reports") / "load-workers"
    out.mkdir(parents=True, exist_ok=True)
    children = _Children(out.resolve())
    bound = wait + (prof.total + prof.timeout + DRAIN_MARGIN if prof else 3600.0)
    deadline = time.monotonic() + bound
    try:
        procs = [children.start(_locust(Path(locustfile), python) + [
            "--worker", "--master-host", host, "--master-port", str(port)],
            out / f"locust-worker-{i}.log") for i in range(workers)]
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        children.kill_all()
    return max((abs(p.returncode or 0) for p in procs), default=0)
