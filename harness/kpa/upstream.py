"""The upstream engine: Knative Serving's own autoscaler code as the oracle of :mod:`harness.kpa`.

``upstream/`` holds a small Go module (``upstream/kpaoracle``) that links
``knative.dev/serving`` at the version pinned in ``upstream/versions.yaml`` (Knative
1.21, the release the kind bring-up installs) and runs a scenario in virtual time with
upstream's parameter parsing (``NewConfigFromMap``, ``MakeDecider``, ``MakeMetric``),
metric collection (``MetricCollector.Record`` into ``TimedFloat64Buckets`` /
``WeightedFloat64Buckets``) and decider (``scaling.New(...).Scale``); the KPA
reconciler's scale-to-zero gates are a transcription of ``scaler.go`` over upstream's
PodAutoscaler status (its entry points are unexported). It writes the same columns as
:func:`harness.kpa.simulate`.

The binary is built on first use into ``$XDG_CACHE_HOME/harness/oracle/<hash>/`` (default
``~/.cache``), keyed by the Go sources, ``go.mod``/``go.sum`` and the Go version; a missing
Go toolchain is a :class:`~harness.errors.UserError`. One process runs any number of
scenarios (:func:`run_many`): JSON lines in, JSON lines out.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Protocol

import pandas as pd

from harness.errors import UserError
from harness.files import data_path
from harness.kpa.simulate import COLUMNS
from harness.objects import AUTOSCALING_PREFIX as PREFIX
from harness.params import KPAParams


class ScenarioInput(Protocol):
    """What the upstream engine reads of a :class:`harness.kpa.scenario.Scenario` (a
    protocol, so that this module does not import the one that dispatches to it)."""

    params: KPAParams
    load: tuple[float, ...]
    initial_ready: int
    fresh: bool
    hold_ready: bool
    pod_startup: float
    history: float | None
    until: float | None
    where: str


__all__ = [
    "UPSTREAM_DIR",
    "UpstreamError",
    "build",
    "knative_knobs",
    "oracle_input",
    "run_many",
    "simulate_upstream",
]

UPSTREAM_DIR = data_path("upstream")
"""The Go module (``go.mod``, ``go.sum``, ``kpaoracle/``): in the checkout, or shipped."""
PACKAGE = "./kpaoracle"
BINARY = "kpaoracle"


class UpstreamError(UserError):
    """The oracle could not be built or run, or refused a scenario (upstream's validation):
    one line for the CLI (exit 2); the build's own output is printed above it."""


# --- build -------------------------------------------------------------------------


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harness" / "oracle"


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise UserError("the upstream engine needs a Go toolchain (>= 1.25) on PATH: "
                        "'go' not found; install Go from https://go.dev/dl/")
    return go


def _sources() -> list[Path]:
    if not (UPSTREAM_DIR / "go.mod").is_file():
        raise UserError("the upstream engine's Go module is missing; run from a checkout",
                        where=str(UPSTREAM_DIR))
    files = [UPSTREAM_DIR / "go.mod", UPSTREAM_DIR / "go.sum"]
    files += sorted((UPSTREAM_DIR / "kpaoracle").glob("*.go"))
    return files


def version_hash(go: str) -> str:
    """Hash of the Go sources, go.mod/go.sum and the Go version: the cache key."""
    h = hashlib.sha256()
    for f in _sources():
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=True)
    h.update(out.stdout.strip().encode())
    return h.hexdigest()[:16]


def build(*, progress: IO[str] | None = None) -> Path:
    """The oracle binary, built now if this version is not in the cache yet.

    ``progress`` (default stderr) gets one line saying what is built and where, then
    ``go build -v``'s own output (modules downloaded, packages compiled).
    """
    go = _go()
    target = cache_root() / version_hash(go)
    binary = target / BINARY
    if binary.is_file():
        return binary
    target.mkdir(parents=True, exist_ok=True)
    out = sys.stderr if progress is None else progress
    with open(target / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build per version, across processes
        if binary.is_file():
            return binary
        print(f"harness: building the upstream engine (Knative Serving's autoscaler, "
              f"{_pinned()}) into {target}; a first build downloads Go modules and takes "
              "a few minutes", file=out, flush=True)
        tmp = target / f".{BINARY}.{os.getpid()}"
        cmd = [go, "build", "-v", "-o", str(tmp), PACKAGE]
        if shutil.which("nice"):
            cmd = ["nice", "-n", "10", *cmd]
        env = {**os.environ, "GOFLAGS": "-mod=readonly", "GOTOOLCHAIN": "local"}
        proc = subprocess.Popen(cmd, cwd=UPSTREAM_DIR, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        compiled = 0
        for line in proc.stdout:  # live: module downloads and errors as they come
            line = line.rstrip()
            if line.startswith("go: ") or " " in line:
                print(f"  {line}", file=out, flush=True)
            else:  # a package compiled: counted, not listed
                compiled += 1
                if compiled % 50 == 0:
                    print(f"  compiled {compiled} packages ...", file=out, flush=True)
        if proc.wait() != 0:
            tmp.unlink(missing_ok=True)
            raise UpstreamError(f"go build of {UPSTREAM_DIR / 'kpaoracle'} failed "
                                f"(exit {proc.returncode}); its output is above")
        print(f"  compiled {compiled} packages", file=out, flush=True)
        tmp.replace(binary)
        print(f"harness: upstream engine ready: {binary}", file=out, flush=True)
    return binary


def _pinned() -> str:
    for line in (UPSTREAM_DIR / "go.mod").read_text().splitlines():
        parts = line.split()
        if "knative.dev/serving" in parts:
            return "knative.dev/serving " + parts[parts.index("knative.dev/serving") + 1]
    return "knative.dev/serving"


# --- input ---------------------------------------------------------------------------


def _num(x: float) -> str:
    return repr(int(x)) if float(x).is_integer() else repr(float(x))


def _dur(seconds: float) -> str:
    return f"{_num(seconds)}s"


def knative_knobs(params: KPAParams) -> tuple[dict[str, str], dict[str, str], int]:
    """``config-autoscaler`` data, revision annotations and containerConcurrency that
    give ``params`` in Knative: every knob, as the strings Knative parses."""
    p = params
    config = {
        "container-concurrency-target-percentage": _num(p.container_concurrency_target_percentage),
        "container-concurrency-target-default": _num(p.container_concurrency_target_default),
        "requests-per-second-target-default": _num(p.requests_per_second_target_default),
        "target-burst-capacity": _num(p.target_burst_capacity),
        "stable-window": _dur(p.stable_window),
        "panic-window-percentage": _num(p.panic_window_percentage),
        "panic-threshold-percentage": _num(p.panic_threshold_percentage),
        "max-scale-up-rate": _num(p.max_scale_up_rate),
        "max-scale-down-rate": _num(p.max_scale_down_rate),
        "enable-scale-to-zero": "true" if p.enable_scale_to_zero else "false",
        "scale-to-zero-grace-period": _dur(p.scale_to_zero_grace_period),
        "scale-to-zero-pod-retention-period": _dur(p.scale_to_zero_pod_retention_period),
        "scale-down-delay": _dur(p.scale_down_delay),
        "pod-autoscaler-class": p.pod_autoscaler_class,
        "activator-capacity": _num(p.activator_capacity),
        "initial-scale": str(p.initial_scale),
        "allow-zero-initial-scale": "true" if p.allow_zero_initial_scale else "false",
        "min-scale": str(p.min_scale),
        "max-scale": str(p.max_scale),
        "max-scale-limit": str(p.max_scale_limit),
    }
    annotations = {PREFIX + "metric": p.metric}
    if p.target is not None:
        annotations[PREFIX + "target"] = _num(p.target)
    if p.target_utilization_percentage is not None:
        annotations[PREFIX + "target-utilization-percentage"] = _num(
            round(p.target_utilization_percentage * 100.0, 9))
    if p.activation_scale > 1:
        annotations[PREFIX + "activation-scale"] = str(p.activation_scale)
    if p.metric_aggregation_algorithm != "linear":
        annotations[PREFIX + "metric-aggregation-algorithm"] = p.metric_aggregation_algorithm
    return config, annotations, p.container_concurrency


def oracle_input(
    scenario: ScenarioInput,
    *,
    id: Any = None,
    config: Mapping[str, Any] | None = None,
    annotations: Mapping[str, Any] | None = None,
    container_concurrency: int | None = None,
) -> dict[str, Any]:
    """The JSON the oracle reads for ``scenario``.

    The knobs come from the scenario's resolved parameters (:func:`knative_knobs`),
    unless ``config``/``annotations`` give the raw Knative strings, which upstream then
    parses itself (the differential test does that, so the resolver is checked too).
    """
    if config is None and annotations is None:
        cfg, ann, cc = knative_knobs(scenario.params)
    else:
        cfg = {str(k): _as_string(v) for k, v in (config or {}).items()}
        ann = {str(k): _as_string(v) for k, v in (annotations or {}).items()}
        cc = container_concurrency or 0
    doc: dict[str, Any] = {
        "id": id,
        "config": cfg,
        "annotations": ann,
        "container_concurrency": cc,
        "load": list(scenario.load),
        "pod_startup": scenario.pod_startup,
        "initial_ready": scenario.initial_ready,
        "hold_ready": scenario.hold_ready,
        "fresh": scenario.fresh,
        "reachable": scenario.reachable,
    }
    if scenario.history is not None:
        doc["history"] = scenario.history
    if scenario.until is not None:
        doc["until"] = scenario.until
    return doc


def _as_string(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# --- run -----------------------------------------------------------------------------


def run_many(inputs: Iterable[dict[str, Any]], *, binary: Path | None = None
             ) -> Iterator[dict[str, Any]]:
    """Run every input through ONE oracle process; yield ``{"id", "columns"|"error"}``
    per input, in order. Input is written on a thread while answers stream back."""
    exe = build() if binary is None else binary
    proc = subprocess.Popen([str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, bufsize=1 << 20)
    assert proc.stdin is not None and proc.stdout is not None
    failure: list[BaseException] = []

    def feed() -> None:
        try:
            for doc in inputs:
                proc.stdin.write(json.dumps(doc) + "\n")  # type: ignore[union-attr]
        except BaseException as exc:  # noqa: BLE001 - re-raised on the reading side
            failure.append(exc)
        finally:
            try:
                proc.stdin.close()  # type: ignore[union-attr]
            except BrokenPipeError:
                pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        for line in proc.stdout:
            yield json.loads(line)
    finally:
        writer.join()
        proc.stdout.close()
        rc = proc.wait()
    if failure:
        raise failure[0]
    if rc != 0:
        raise UpstreamError(f"the upstream engine exited with {rc}")


def frame(columns: Mapping[str, list[Any]]) -> pd.DataFrame:
    """The oracle's columns as :func:`harness.kpa.simulate`'s frame (same column order)."""
    return pd.DataFrame({c: columns[c] for c in COLUMNS}, columns=list(COLUMNS))


def simulate_upstream(scenario: ScenarioInput, **knobs: Any) -> pd.DataFrame:
    """One scenario through the upstream engine (see :func:`oracle_input` for ``knobs``)."""
    (answer,) = list(run_many([oracle_input(scenario, id=0, **knobs)]))
    if "error" in answer:
        raise UpstreamError(f"Knative refuses the scenario: {answer['error']}",
                            where=scenario.where)
    return frame(answer["columns"])
