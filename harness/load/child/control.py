"""Coordination of one profile run inside Locust processes (imports gevent: child only).

One :class:`RunControl` per process, wired to Locust's events by :mod:`.locustfile`:

* **local** (single process) and **master**: load the profile, write records to
  ``--records`` and one status line per second to ``--status-file`` (JSON lines), and
  decide when the run has drained (every request of the profile answered and recorded).
* **master** sends the plan (origin time, profile, number of workers, target) to the
  workers as a custom message when the shape starts; receives their record batches and
  their "done" reports.
* **worker** (here or on another machine) plays its share of the open-loop arrivals,
  ships its records to the master, and reports "done" once its users stopped and nothing
  is in flight.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
import psutil
from locust.contrib.fasthttp import FastHttpSession
from locust.runners import MasterRunner, WorkerRunner

from harness.errors import UserError
from harness.load.child.openloop import ArrivalDispatcher
from harness.load.child.sink import RECORDS_MESSAGE, RecordSink
from harness.load.profile import (
    DEFAULT_INSTANCES,
    LoadProfile,
    profile_from_json,
    read_load_profile,
)
from harness.load.shapes import arrivals_before, target_at, users_at

PLAN_MESSAGE = "harness_plan"
DONE_MESSAGE = "harness_done"
RESOLVED_SUFFIX = ".resolved.json"
DRAIN_MARGIN = 5.0  # seconds past the profile + request time-out before giving up on draining


@dataclass(frozen=True)
class InferenceRequest:
    """What every request of one protocol sends (built once per process)."""

    path: str
    body: bytes
    headers: dict[str, str]
    name: str


def model_from_host(host: str) -> str:
    """The model KServe's runtimes serve: the InferenceService's name (``--model_name=
    {{.Name}}``), the first label of its host less ``-predictor``; ``linear`` (the sample
    model's own name) without a host."""
    label = (host or "").split(".", 1)[0].removesuffix("-predictor")
    return label or "linear"


def build_request(protocol: str, model: str, instances: Any, host_header: str) -> InferenceRequest:
    rows = [list(r) for r in instances]
    if protocol == "v2":
        payload: dict[str, Any] = {"inputs": [{
            "name": "input-0", "shape": [len(rows), len(rows[0])], "datatype": "FP32",
            "data": [x for r in rows for x in r]}]}
        path, name = f"/v2/models/{model}/infer", "v2 infer"
    else:
        payload, path, name = {"instances": rows}, f"/v1/models/{model}:predict", "v1 predict"
    headers = {"Content-Type": "application/json"}
    if host_header:
        headers["Host"] = host_header
    return InferenceRequest(path, json.dumps(payload).encode(), headers, name)


class RunControl:
    """Per-process state of a profile run; see the module docstring."""

    def __init__(self) -> None:
        self.environment: Any = None
        self.runner: Any = None
        self.role = "local"
        self.profile: LoadProfile | None = None
        self.origin: float | None = None
        self.workers = 1
        self.host_header = ""
        self.model = ""
        self.sink = RecordSink()
        self.dispatcher: ArrivalDispatcher | None = None
        self.requests: dict[str, InferenceRequest] = {}
        self.done_workers: dict[int, dict[str, Any]] = {}
        self.drained_at: float | None = None
        self.cpu_max = 0.0
        self._status_fh: Any = None
        self._proc = psutil.Process()

    # -- set-up -------------------------------------------------------------------------------

    def on_init(self, environment: Any, runner: Any = None, **_: Any) -> None:
        self.environment = environment
        self.runner = runner = runner or environment.runner
        opts = environment.parsed_options
        self.role = ("master" if isinstance(runner, MasterRunner)
                     else "worker" if isinstance(runner, WorkerRunner) else "local")
        self.host_header = getattr(opts, "host_header", "") or ""
        self.model = getattr(opts, "model", "") or ""
        path = getattr(opts, "load_profile", "") or ""
        if self.role != "worker" and path:
            try:
                if path.endswith(RESOLVED_SUFFIX):  # written by harness.load.runner
                    self.profile = profile_from_json(json.loads(Path(path).read_text()))
                else:
                    self.profile = read_load_profile(path)
            except UserError as exc:
                sys.stderr.write(f"locustfile: error: {exc}\n")
                raise SystemExit(2) from None
            if not environment.stop_timeout:
                # users asked to stop finish their request first, so every request is recorded
                environment.stop_timeout = self.profile.timeout + 1.0
        self._apply_profile()
        records = getattr(opts, "records", "") or ""
        if self.role == "worker":
            self.sink.ship_with(self._ship)
            runner.register_message(PLAN_MESSAGE, self._on_plan)
        else:
            if records:
                self.sink.open_file(records)
            status = getattr(opts, "status_file", "") or ""
            if status:
                self._status_fh = open(status, "a", buffering=1)  # closed at test_stop
            if self.role == "master":
                runner.register_message(RECORDS_MESSAGE, self._on_records)
                runner.register_message(DONE_MESSAGE, self._on_done)
            gevent.spawn(self._status_loop)
        environment.events.request.add_listener(self.sink.on_request)
        environment.events.test_stop.add_listener(self._on_test_stop)
        self.sink.start()

    def _apply_profile(self) -> None:
        """(Re)build the request templates and the users' time-outs from the profile."""
        p = self.profile
        model = self.model or (p.model if p else "") or model_from_host(self.host_header)
        instances = p.instances if p else DEFAULT_INSTANCES
        self.requests = {proto: build_request(proto, model, instances, self.host_header)
                         for proto in ("v1", "v2")}
        if p is not None and self.environment is not None:
            for cls in self.environment.user_classes:
                cls.network_timeout = cls.connection_timeout = p.timeout

    @property
    def protocol(self) -> str:
        return self.profile.protocol if self.profile else "v1"

    # -- start --------------------------------------------------------------------------------

    def begin(self) -> None:
        """The shape starts (local or master): fix the origin; start or hand out arrivals."""
        if self.profile is None:
            return
        self.origin = time.time()
        self.drained_at = None
        self.done_workers = {}
        if self.role == "master":
            self.workers = max(1, self.runner.worker_count)
            self.runner.send_message(PLAN_MESSAGE, {
                "origin": self.origin, "workers": self.workers, "host": self.environment.host,
                "host_header": self.host_header, "model": self.model,
                "profile": self.profile.to_json(),
            })
        elif "rate" in self.profile.modes:
            self._start_dispatcher(self.environment.host, 0, 1)

    def _on_plan(self, environment: Any, msg: Any, **_: Any) -> None:
        data = msg.data
        self.profile = profile_from_json(data["profile"])
        self.origin = float(data["origin"])
        self.workers = int(data["workers"])
        self.host_header = data.get("host_header") or self.host_header
        self.model = data.get("model") or self.model
        self._apply_profile()
        if not environment.stop_timeout:
            environment.stop_timeout = self.profile.timeout + 1.0
        index = max(0, self.runner.worker_index) % self.workers
        self.sink.worker = index
        if "rate" in self.profile.modes:
            self._start_dispatcher(data["host"], index, self.workers)
        gevent.spawn(self._worker_watch, index)

    def _start_dispatcher(self, host: str, index: int, stride: int) -> None:
        assert self.profile is not None and self.origin is not None
        if self.dispatcher is not None:
            self.dispatcher.stop(0)
        session = FastHttpSession(
            base_url=host, request_event=self.environment.events.request, user=None,
            network_timeout=self.profile.timeout, connection_timeout=self.profile.timeout,
            concurrency=self.profile.max_in_flight,
        )
        req = self.requests[self.protocol]

        def send(due: float) -> None:
            session.request("POST", req.path, name=req.name, data=req.body,
                            headers=req.headers, context={"scheduled": due, "loop": "open"})

        self.dispatcher = ArrivalDispatcher(self.profile, self.origin, send, self.sink,
                                            index=index, stride=stride)
        self.dispatcher.start()

    # -- the end --------------------------------------------------------------------------------

    def _deadline(self) -> float:
        assert self.profile is not None and self.origin is not None
        return self.origin + self.profile.total + self.profile.timeout + DRAIN_MARGIN

    def _local_idle(self) -> bool:
        return self.runner.user_count == 0 and (self.dispatcher is None or self.dispatcher.finished)

    def drained(self) -> bool:
        """After the profile's end: has every request been answered and recorded?"""
        if self.drained_at is not None:
            return True
        if self.role == "master":
            done = len(self.done_workers) >= self.workers
        else:
            done = self._local_idle()
        if done or time.time() > self._deadline():
            if self.dispatcher is not None:
                self.dispatcher.stop(0)
            self.sink.flush()
            self.drained_at = time.time()
            return True
        return False

    def _worker_watch(self, index: int) -> None:
        """Worker: report done once past the end, users stopped and nothing in flight."""
        assert self.profile is not None and self.origin is not None
        end = self.origin + self.profile.total
        self._proc.cpu_percent()
        while True:
            gevent.sleep(0.2)
            self.cpu_max = max(self.cpu_max, self._proc.cpu_percent())
            now = time.time()
            if now > end and (self._local_idle() or now > self._deadline()):
                break
        if self.dispatcher is not None:
            self.dispatcher.stop(0)
        self.sink.flush()
        self.runner.send_message(DONE_MESSAGE, {"index": index, **self._dispatch_stats()})

    def _dispatch_stats(self) -> dict[str, Any]:
        d = self.dispatcher
        return {
            "dispatched": d.dispatched if d else 0,
            "dropped": d.dropped if d else 0,
            "max_lag": d.max_lag if d else 0.0,
            "records": self.sink.count,
            "cpu_max": self.cpu_max,
        }

    def _ship(self, text: str, count: int) -> None:
        self.runner.send_message(RECORDS_MESSAGE, {"text": text, "count": count})

    def _on_records(self, environment: Any, msg: Any, **_: Any) -> None:
        self.sink.write_text(msg.data["text"])
        self.sink.count += int(msg.data.get("count", 0))

    def _on_done(self, environment: Any, msg: Any, **_: Any) -> None:
        self.done_workers[int(msg.data["index"])] = dict(msg.data)

    def _on_test_stop(self, **_: Any) -> None:
        if self.role == "worker":
            self.sink.flush()
            return
        self._write_status(final=True)
        self.sink.close()

    # -- status ---------------------------------------------------------------------------------

    def _status_loop(self) -> None:
        self._proc.cpu_percent()
        while True:
            gevent.sleep(1.0)
            self.cpu_max = max(self.cpu_max, self._proc.cpu_percent())
            self._write_status()

    def _write_status(self, final: bool = False) -> None:
        if self._status_fh is None or self._status_fh.closed:
            return
        now = time.time()
        elapsed = (now - self.origin) if self.origin is not None else 0.0
        p = self.profile
        mode, level = (target_at(p, elapsed) or ("idle", 0.0)) if p else ("concurrency", 0.0)
        line: dict[str, Any] = {
            "time": now, "origin": self.origin, "elapsed": round(elapsed, 3),
            "total": p.total if p else None,
            "started": self.origin is not None, "role": self.role, "mode": mode,
            "target": level, "users": self.runner.user_count, "cpu": self.cpu_max,
        }
        if p is not None and self.origin is not None:
            line["wanted_users"] = users_at(p, elapsed)
            line["scheduled_arrivals"] = arrivals_before(p, elapsed)
        if self.role == "master":
            line["workers"] = self.workers
            line["worker_cpu"] = [c.cpu_usage for c in self.runner.clients.values()]
        if final:
            line["final"] = True
            if self.role == "master":
                line["worker_reports"] = [self.done_workers[i] for i in sorted(self.done_workers)]
                line["records"] = self.sink.count
            else:
                line["worker_reports"] = [self._dispatch_stats()]
            line["drained"] = self.drained_at is not None
        self._status_fh.write(json.dumps(line) + "\n")
        if final:
            self._status_fh.close()
