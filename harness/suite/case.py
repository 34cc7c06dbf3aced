"""One conformance test's case: its namespace, deployed services, timeline, load and
verdicts, and the part of the run report it leaves behind.

A test gets a :class:`CaseData` (the plugin's internal ``_hx_case`` fixture) that the
public fixtures fill in: ``deploy_isvc`` adds :class:`Deployed` services, ``load`` adds
request records, ``timeline`` records the namespace and builds frames, and
:meth:`CaseData.attach` adds verdicts. At the end of the test, :meth:`CaseData.save`
pickles a :class:`harness.report.Case` into ``<run dir>/.parts/`` (also on failure, so
the report shows what a failed check saw); the controlling pytest process turns every
part into the report (:mod:`harness.suite.session_end`). Pickles, because xdist workers are
separate processes and the frames are DataFrames.
"""

from __future__ import annotations

import copy
import math
import pickle
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.errors import UserError
from harness.files import data_path, read_yaml
from harness.objects import merge_patch

if TYPE_CHECKING:
    from harness.checks.verdict import Verdict
    from harness.load.result import LoadResult
    from harness.observe.frames import Frames
    from harness.observe.recorder import Recorder, Recording
    from harness.resolve import Resolved
    from harness.suite.target import ClusterHandle

ISVC_DIR = data_path("fixtures", "isvc")
PARTS = ".parts"
KEPT = "kept.txt"


def describe(v: Verdict) -> str:
    """A verdict in a few lines: the assertion message of a suite."""
    head = f"{v.check}: {v.status.upper()}: {v.claim} [{v.claim_key}]"
    lines = [head, f"  expected: {v.expected}", f"  observed: {v.observed}"]
    if v.why:
        lines.append(f"  why: {v.why}")
    if v.budget is not None:
        lines.append(f"  budget: {v.budget.describe()}")
    return "\n".join(lines)


def not_reached(missed: dict[str, Any]) -> str:
    """``not reached: 3 pods at the deadline, 1 expected by 372 s (model)``."""
    return f"not reached: {missed['pods']} pods at the deadline, {missed['expected']}"


def with_missed(verdict: Verdict, missed: list[dict[str, Any]]) -> Verdict:
    """``verdict`` failed by every wait in ``missed`` (its why first, then the check's)."""
    if not missed:
        return verdict
    from harness.checks.verdict import FAIL

    why = "; ".join(not_reached(m) for m in missed)
    if verdict.why:
        why += f"; {verdict.why}"
    numbers = {**verdict.numbers, "waits_missed": float(len(missed))}
    return replace(verdict, status=FAIL, why=why, numbers=numbers)


def load_isvc(source: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """An InferenceService manifest: a mapping, a path, or a name in ``fixtures/isvc/``."""
    if isinstance(source, Mapping):
        return copy.deepcopy(dict(source))
    path = Path(source)
    if not path.exists():
        name = path.name if path.suffix else f"{path.name}.yaml"
        path = ISVC_DIR / name
    doc = read_yaml(path)
    if not isinstance(doc, dict):
        raise UserError("not an InferenceService manifest", where=str(path))
    return doc


@dataclass
class Deployed:
    """An InferenceService the test deployed and saw Ready."""

    name: str
    namespace: str
    host: str
    revision: str
    manifest: dict[str, Any]
    params: Resolved
    status: dict[str, Any] = field(default_factory=dict)

    @property
    def pa(self) -> str:
        """The PodAutoscaler's name (Knative names it after the revision)."""
        return self.revision


@dataclass
class CaseData:
    """Everything one test collects for the report."""

    name: str
    cluster: ClusterHandle
    namespace: str
    out_dir: Path
    profile: str
    deployed: list[Deployed] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    loads: list[LoadResult] = field(default_factory=list)
    recorder: Recorder | None = None
    recording: Recording | None = None
    frames: Frames | None = None
    params: Resolved | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    missed: list[dict[str, Any]] = field(default_factory=list)
    """Waits that ran out before their event (see :meth:`wait`)."""
    progress: dict[str, Any] = field(default_factory=dict)
    """What the test does now, for the progress line (see :meth:`set_phase`)."""
    progress_target: Deployed | None = None
    load_started: list[float] = field(default_factory=list)
    """Epoch of each load's first request (its origin), in order."""

    # ---------------------------------------------------------------- deploy

    def deploy(self, source: str | Path | Mapping[str, Any], *, name: str | None = None,
               patch: Mapping[str, Any] | None = None,
               annotations: Mapping[str, str] | None = None, timeout: float = 90.0
               ) -> Deployed:
        """Apply an InferenceService into the case's namespace, wait until Ready."""
        from harness.kube.apply import apply
        from harness.kube.knative import read_config_autoscaler
        from harness.kube.wait import wait_isvc_ready
        from harness.prerequisites import MODEL_FORMAT, serving_runtime
        from harness.resolve import resolve
        from harness.suite.preflight import cluster_setup, model_format

        doc = load_isvc(source)
        if patch:
            doc = merge_patch(doc, patch)
        meta = doc.setdefault("metadata", {})
        if name:
            meta["name"] = name
        if annotations:
            meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
        meta.pop("namespace", None)
        kube = self.cluster.kube
        preflight = self.cluster.preflight
        if preflight is not None:
            blocked = preflight.blocks(doc)
            if blocked:  # this cluster cannot run it: skipped with the preflight's line
                import pytest

                pytest.skip(blocked)
        self.set_phase(f"deploys {meta['name']}", expected_s=timeout)
        try:
            if self.cluster.mode == "current" and model_format(doc) == MODEL_FORMAT:
                # a shared cluster: the runtime goes into the test's own namespace
                apply(kube, serving_runtime(), namespace=self.namespace)
            apply(kube, doc, namespace=self.namespace)
            obj = wait_isvc_ready(kube, meta["name"], self.namespace, timeout=timeout)
        finally:
            self.set_phase("")
        status = obj.get("status") or {}
        setup = self.meta.get("cluster_setup")
        if setup is None or setup.get("serving_runtime", "").startswith("none"):
            self.meta["cluster_setup"] = cluster_setup(kube, status)
        predictor = (status.get("components") or {}).get("predictor") or {}
        revision = str(predictor.get("latestReadyRevision")
                       or predictor.get("latestCreatedRevision")
                       or f"{meta['name']}-predictor-00001")
        params = resolve(profile=self.profile, configmap=read_config_autoscaler(kube) or {},
                         isvc=doc)
        d = Deployed(meta["name"], self.namespace, predictor_host(meta["name"], status),
                     revision, doc, params, status)
        self.deployed.append(d)
        if self.params is None:
            self.params = params
        return d

    # ---------------------------------------------------------------- load

    def load(self, profile: str | Path | Any, target: Deployed, *, tag: str | None = None
             ) -> LoadResult:
        """Play a load profile (a path, a name under ``loadprofiles/suites/`` or
        ``loadprofiles/``, or a loaded :class:`harness.load.profile.LoadProfile`) against
        ``target`` through the ingress."""
        from harness.load import run
        from harness.load.profile import LoadProfile, read_load_profile

        prof = profile if isinstance(profile, LoadProfile) else \
            read_load_profile(profile_path(profile))
        tag = tag or f"load-{len(self.loads) + 1}"
        self.set_phase(f"plays load {prof.name}", expected_s=prof.total, target=target)
        started = time.time()
        try:
            result = run(prof, self.cluster.ingress_url, target.host, self.out_dir / tag,
                         model=target.name)
        finally:
            self.set_phase("")
        self.loads.append(result)
        self.load_started.append(result.origin or started)
        return result

    def records(self) -> pd.DataFrame | None:
        """Every request record of every load so far, by start time."""
        frames = [r.records() for r in self.loads]
        frames = [f for f in frames if not f.empty]
        if not frames:
            return None
        return pd.concat(frames, ignore_index=True).sort_values("start",
                                                                   ignore_index=True)

    # ---------------------------------------------------------------- timeline

    def start_recording(self) -> Recorder:
        from harness.observe.recorder import Recorder

        if self.recorder is not None:
            raise RuntimeError("the timeline is already recording")
        self.recorder = Recorder(self.cluster.kube, self.namespace,
                                 jsonl=self.out_dir / "events.jsonl",
                                 metrics_url=self.cluster.metrics_url).start()
        return self.recorder

    def stop_recording(self) -> Recording | None:
        if self.recorder is not None and self.recording is None:
            self.recording = self.recorder.stop()
        return self.recording

    def build_frames(self, target: Deployed | None = None, *, live: bool = False) -> Frames:
        """Frames of the recording (so far, with ``live``), restricted to ``target``'s
        revision and PodAutoscaler when given."""
        from harness.observe.frames import build_frames

        if self.recorder is None:
            raise RuntimeError("the timeline was not started")
        rev = target.revision if target is not None else None
        params = (target.params if target is not None else self.params)
        p = params.params if params is not None else None
        if live and self.recording is None:
            return build_frames(self.recorder.events, revision=rev, pa=rev, params=p)
        rec = self.stop_recording()
        assert rec is not None
        frames = rec.frames(revision=rev, pa=rev, params=p)
        if not math.isnan(rec.end) and (math.isnan(frames.end) or rec.end > frames.end):
            frames = replace(frames, end=rec.end)  # the recording covered until its stop
        self.frames = frames
        return frames

    def wait(self, predicate: Callable[[Frames], bool], *, timeout: float, what: str,
             target: Deployed | None = None, step: float = 0.5, expected: str = "",
             since: float | None = None) -> float | None:
        """Wait (bounded) until ``predicate(frames so far)``: seconds waited, or None when
        ``timeout`` seconds after ``since`` (epoch; default now) passed first. A wait that
        ran out is kept in :attr:`missed` (what it waited for, the pods at the deadline,
        ``expected`` in words), and :meth:`attach` turns the test's verdicts into a
        failure that says so: the check still runs on what was recorded."""
        t0 = time.monotonic()
        start = time.time() if since is None else since
        deadline = t0 + max(0.0, start + timeout - time.time())
        self.set_phase(f"waits for {what}", expected_s=deadline - t0, target=target)
        frames = None
        try:
            while True:
                frames = self.build_frames(target, live=True)
                if predicate(frames):
                    return time.monotonic() - t0
                if time.monotonic() >= deadline:
                    break
                time.sleep(min(step, max(0.0, deadline - time.monotonic())) or step)
        finally:
            self.set_phase("")
        from harness.suite.predicates import pods_now

        at = pods_now(frames) if frames is not None else 0
        self.missed.append({"what": what, "timeout_s": round(timeout, 1), "pods": at,
                            "expected": expected or what,
                            "waited_s": round(time.monotonic() - t0, 1)})
        return None

    def set_phase(self, phase: str, *, expected_s: float | None = None,
                  target: Deployed | None = None) -> None:
        """What the test does now (for the progress line): ``phase`` in words, its
        expected seconds from now, the service it watches."""
        self.progress["phase"] = phase
        self.progress["phase_started"] = time.time()
        self.progress["phase_expected_s"] = expected_s
        if target is not None:
            self.progress_target = target

    def live_state(self) -> dict[str, Any]:
        """Ready and desired pods and panic, from the recording so far (progress)."""
        if self.recorder is None or self.recording is not None:
            return {}
        from harness.observe.frames import build_frames
        from harness.observe.series import one_pa

        target = self.progress_target or (self.deployed[0] if self.deployed else None)
        rev = target.revision if target is not None else None
        frames = build_frames(list(self.recorder.events), revision=rev, pa=rev)
        out: dict[str, Any] = {}
        if not frames.ready.empty:
            out["ready"] = int(frames.ready["ready"].iloc[-1])
        scale = one_pa(frames.scale) if not frames.scale.empty else frames.scale
        if not scale.empty and not math.isnan(float(scale["desired"].iloc[-1])):
            out["desired"] = int(scale["desired"].iloc[-1])
        scraper = getattr(self.recorder, "_scraper", None)
        samples = (scraper.samples.get(rev) or []) if scraper is not None and rev else []
        if samples:
            out["panic"] = bool(samples[-1][1] >= 1)
        return out

    # ---------------------------------------------------------------- verdicts

    def attach(self, verdict: Verdict) -> Verdict:
        """Keep ``verdict`` for the report; after a wait that ran out it fails and says
        what was not reached (the check itself ran on what was recorded)."""
        verdict = with_missed(verdict, self.missed)
        self.verdicts.append(verdict)
        return verdict

    def to_case(self) -> Any:
        from harness.report.bundle import Case

        frames = self.frames
        if frames is None and self.recorder is not None:
            try:
                frames = self.build_frames(self.deployed[0] if self.deployed else None)
            except Exception:  # noqa: BLE001 - a broken timeline still gets its verdicts
                frames = None
        if frames is None:
            from harness.observe.frames import build_frames

            frames = build_frames([])
        params = self.params.params if self.params is not None else None
        band = None
        if params is not None and not frames.scale.empty and not math.isnan(frames.start):
            try:
                from harness.checks.band import reference_band

                band = reference_band(frames, self.params, self.records())
            except Exception:  # noqa: BLE001 - the band is decoration here
                band = None
        meta = {"namespace": self.namespace,
                "services": [d.name for d in self.deployed],
                "loads": [r.profile.name for r in self.loads], **self.meta}
        if self.recording is not None:
            meta["panic_gauge"] = ("scraped" if self.recording.metrics_url else
                                   f"inferred (metrics-protocol "
                                   f"{self.cluster.metrics_protocol})")
        return Case(self.name, frames, list(self.verdicts), records=self.records(),
                    band=band, params=params,
                    events=self.recording.events if self.recording is not None else None,
                    meta=meta)

    def save(self, run_dir: Path, *, outcome: str) -> Path:
        """Pickle the report case into ``run_dir/.parts/`` (one file per test)."""
        self.stop_recording()
        case = self.to_case()
        case.meta["outcome"] = outcome
        parts = run_dir / PARTS
        parts.mkdir(parents=True, exist_ok=True)
        from harness.report.bundle import slug

        path = parts / f"{slug(self.name)}.pkl"
        tmp = path.with_suffix(".part")
        tmp.write_bytes(pickle.dumps(case))
        tmp.replace(path)
        return path


def predictor_host(name: str, status: Mapping[str, Any]) -> str:
    """The Host header that reaches the predictor: its URL's host (``status.components.
    predictor.url``), else the service URL's with ``-predictor`` after the name."""
    from urllib.parse import urlsplit

    predictor = (status.get("components") or {}).get("predictor") or {}
    url = predictor.get("url")
    if url:
        return str(urlsplit(str(url)).hostname)
    host = urlsplit(str(status.get("url") or "")).hostname or ""
    if host.startswith(name + "."):
        return f"{name}-predictor{host[len(name):]}"
    raise UserError(f"InferenceService {name} has no URL in its status")


def profile_path(profile: str | Path) -> Path:
    p = Path(profile)
    if p.exists():
        return p
    for base in (data_path("loadprofiles", "suites"), data_path("loadprofiles")):
        for cand in (base / p.name, base / f"{p.name}.yaml"):
            if cand.exists():
                return cand
    raise UserError("no such load profile", where=str(profile))
