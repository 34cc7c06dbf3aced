"""Load runs against a local model-server process: each shape's concurrency or rate per
second within a stated tolerance, one record per request the server saw, runs bounded.

Tolerances (100 ms server latency, checked per whole second of the profile):

* closed loop: mean requests in flight within 15 % + 0.5 of the users asked for, from the
  second second on (Locust needs the first one to start);
* open loop: requests sent within max(2, 10 %) of the arrivals scheduled in that second,
  and the p99 lag between due time and send under 100 ms;
* idle: no request starts later than 50 ms into an idle second (a closed-loop user may
  have started one just before the shape's tick stopped it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import psutil
import pytest

from harness.load import run, runner
from harness.load.profile import parse_profile
from harness.load.records import COLUMNS, read_records
from harness.load.shapes import arrivals_before

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures" / "modelserver"))
from modelserver.local import LocalModelServer  # noqa: E402

pytestmark = pytest.mark.timeout(120)
LATENCY = "100ms"


@pytest.fixture(scope="module")
def server():
    with LocalModelServer({"REQUEST_LATENCY": LATENCY}, pod_name="pod-load") as srv:
        srv.wait_ready()
        yield srv


def profile(*segments, **top):
    return parse_profile({"segments": list(segments), **top}, where="test")


def check_closed(table, seconds):
    bad = []
    for s in seconds:
        row = table.iloc[s]
        assert row["mode"] == "concurrency"
        if abs(row["achieved"] - row["offered"]) > 0.15 * row["offered"] + 0.5:
            bad.append((s, row["offered"], row["achieved"]))
    assert not bad, f"(second, offered, achieved) out of tolerance: {bad}"


def check_open(table, seconds):
    bad = []
    for s in seconds:
        row = table.iloc[s]
        assert row["mode"] == "rate"
        if abs(row["achieved"] - row["offered"]) > max(2.0, 0.10 * row["offered"]):
            bad.append((s, row["offered"], row["achieved"]))
    assert not bad, f"(second, offered, achieved) out of tolerance: {bad}"


def check_idle(records, origin, seconds):
    rel = records["start"].to_numpy() - origin
    for s in seconds:
        late = rel[(rel >= s + 0.05) & (rel < s + 1)]
        assert len(late) == 0, f"{len(late)} requests started in idle second {s}"


def test_closed_loop_shapes(server, tmp_path):
    prof = profile(
        {"shape": "constant", "duration": "2s", "concurrency": 3},
        {"shape": "step", "duration": "2s", "concurrency": {"levels": [2, 5]}},
        {"shape": "spike", "duration": "3s",
         "concurrency": {"base": 1, "peak": 6, "at": "1s", "width": "1s"}},
        {"shape": "idle", "duration": "1s"},
        {"shape": "burst", "duration": "2s",
         "concurrency": {"baseline": 2, "capacity": 2, "multiple": 2, "at": "1s"}},
        {"shape": "sine", "duration": "4s",
         "concurrency": {"mean": 3, "amplitude": 2, "period": "4s"}},
    )
    before = server.inference_count()
    result = run(prof, server.url, "linear-predictor.ns.example.com", tmp_path)
    records = result.records()
    table = result.per_second
    assert list(table["offered"]) == [3, 3, 2, 5, 1, 6, 1, 0, 2, 4, 3, 5, 3, 1]
    check_closed(table, [s for s in range(1, 14) if s != 7])
    check_idle(records, result.origin, [7])
    assert len(records) == server.inference_count() - before == result.requests
    assert set(records["pod"]) == {"pod-load"} and set(records["status"]) == {200}
    assert set(records["loop"]) == {"closed"} and records["scheduled"].isna().all()
    assert result.kept_up, result.reasons
    assert result.wall_s < prof.total + 15


def test_open_loop_shapes_v2(server, tmp_path):
    (tmp_path / "trace.csv").write_text("second,value\n0,15\n1,35\n2,5\n")
    (tmp_path / "p.yaml").write_text(json.dumps({
        "request": {"protocol": "v2"},
        "segments": [
            {"shape": "ramp", "duration": "3s", "rate": {"from": 10, "to": 40}},
            {"shape": "spike", "duration": "3s",
             "rate": {"base": 10, "peak": 60, "at": "1s", "width": "1s"}},
            {"shape": "idle", "duration": "1s"},
            {"shape": "sine", "duration": "4s",
             "rate": {"mean": 30, "amplitude": 20, "period": "4s"}},
            {"shape": "trace", "rate": {"file": "trace.csv"}},
            {"shape": "constant", "duration": "1s", "rate": 20},
        ]}))
    before = server.inference_count()
    counts_before = server.request_counts()
    result = run(tmp_path / "p.yaml", server.url, None, tmp_path / "out")
    records = result.records()
    table = result.per_second
    # ramp 15 25 35 | spike 10 60 10 | idle | sine 30 ± 20·(2/π) | trace | constant
    assert list(table["offered"]) == [15, 25, 35, 10, 60, 10, 0, 43, 42, 18, 17, 15, 35, 5, 20]
    check_open(table, [s for s in range(15) if s != 6])
    check_idle(records, result.origin, [6])
    prof = result.profile
    assert len(records) == arrivals_before(prof, prof.total) == 350
    assert len(records) == server.inference_count() - before
    v2 = server.request_counts().get(("v2_infer", 200), 0) - counts_before.get(("v2_infer", 200), 0)
    assert v2 == len(records)
    assert set(records["loop"]) == {"open"} and records["scheduled"].notna().all()
    lag = records["start"] - records["scheduled"]
    assert np.percentile(lag, 99) < 0.100 and lag.min() > -0.005
    assert result.kept_up, result.reasons


def test_open_loop_is_not_delayed_by_slow_responses(tmp_path):
    # 1 s responses at 20 arrivals/s: a closed loop would manage 1 request/s per user;
    # the open loop keeps sending on schedule with ~20 in flight.
    prof = profile({"shape": "constant", "duration": "3s", "rate": 20})
    with LocalModelServer({"REQUEST_LATENCY": "1s"}) as slow:
        slow.wait_ready()
        result = run(prof, slow.url, None, tmp_path)
        assert len(result.records()) == slow.inference_count() == 60
    check_open(result.per_second, [0, 1, 2])
    assert result.per_second["concurrency"].iloc[1:].min() > 15
    assert result.summary["latency_ms"]["p50"] > 990
    assert result.kept_up, result.reasons


def test_in_flight_limit_is_reported_not_queued(server, tmp_path):
    prof = profile({"shape": "constant", "duration": "2s", "rate": 50},
                   limits={"max_in_flight": 2})
    before = server.inference_count()
    result = run(prof, server.url, None, tmp_path)
    records = result.records()
    sent = records[~records["error"].str.startswith("not sent")]
    assert len(records) == 100
    assert len(sent) == server.inference_count() - before
    assert 0 < result.summary["not_sent"] == 100 - len(sent)
    assert not result.kept_up
    assert any("not sent" in r for r in result.reasons)


def test_two_workers_share_the_load(server, tmp_path):
    prof = profile({"shape": "constant", "duration": "2s", "rate": 40},
                   {"shape": "constant", "duration": "2s", "concurrency": 4})
    before = server.inference_count()
    result = run(prof, server.url, None, tmp_path, workers=2)
    records = result.records()
    assert result.workers == 2
    assert len(records) == server.inference_count() - before
    open_ = records[records["loop"] == "open"]
    assert len(open_) == 80
    assert sorted(open_["worker"].value_counts().to_list()) == [40, 40]
    check_open(result.per_second, [0, 1])
    check_closed(result.per_second, [3])
    assert set(records["worker"]) == {0, 1}
    assert set(result.cpu) == {"main", "worker0", "worker1"}


def test_workers_from_another_machine_join_the_master(server, tmp_path):
    # "another machine" is played by run_workers() in a thread, as `harness load PROFILE
    # --workers 1 --master HOST:PORT` would run it there.
    prof = profile({"shape": "constant", "duration": "2s", "rate": 30})
    port = runner.free_port()
    before = server.inference_count()
    remote_rc: list[int] = []
    remote = threading.Thread(target=lambda: remote_rc.append(runner.run_workers(
        f"127.0.0.1:{port}", 1, profile=prof, wait=30, out_dir=tmp_path / "remote")))
    remote.start()
    try:
        result = run(prof, server.url, None, tmp_path / "out", workers=1,
                     master_bind=f"127.0.0.1:{port}", expect_workers=1)
    finally:
        remote.join(60)
    records = result.records()
    assert remote_rc == [0]
    assert len(records) == 60 == server.inference_count() - before
    assert sorted(records["worker"].value_counts().to_list()) == [30, 30]
    check_open(result.per_second, [0, 1])


class _Recorder(BaseHTTPRequestHandler):
    hosts: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Recorder.hosts.append(self.headers.get("Host", ""))
        body = b'{"predictions": [[0.0]]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Pod-Name", "recorder")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_plain_locust_plays_a_profile_with_the_host_header(tmp_path):
    _Recorder.hosts = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    (tmp_path / "p.yaml").write_text(
        "segments:\n  - {shape: constant, duration: 2s, rate: 15}\n"
        "  - {shape: constant, duration: 1s, concurrency: 1}\n")
    cmd = [sys.executable, "-m", "locust", "-f", str(runner.LOCUSTFILE),
           "--headless", "--only-summary", "--host", f"http://127.0.0.1:{httpd.server_port}",
           "--load-profile", "p.yaml", "--records", "rec.csv",
           "--host-header", "linear-predictor.demo.example.com"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        httpd.shutdown()
        httpd.server_close()
    assert proc.returncode == 0, out.decode()[-2000:]
    records = read_records(tmp_path / "rec.csv")
    assert len(records) == len(_Recorder.hosts) > 30
    assert set(_Recorder.hosts) == {"linear-predictor.demo.example.com"}
    assert set(records["pod"]) == {"recorder"}
    assert (records["loop"] == "open").sum() == 30


def test_a_run_that_does_not_end_is_killed_at_its_bound(tmp_path, monkeypatch):
    never_ends = tmp_path / "never_ends.py"
    never_ends.write_text(
        f"exec(open({str(runner.LOCUSTFILE)!r}).read())\n"
        "ProfileShape.tick = lambda self: (1, 10.0)\n")
    monkeypatch.setattr(runner, "START_ALLOWANCE", 4.0)
    monkeypatch.setattr(runner, "DRAIN_MARGIN", 0.0)
    monkeypatch.setattr(runner, "BOUND_MARGIN", 0.0)
    prof = profile({"shape": "constant", "duration": "1s", "concurrency": 1},
                   limits={"timeout": "1s"})
    with LocalModelServer({"REQUEST_LATENCY": LATENCY}) as own:  # the kill cuts requests
        own.wait_ready()
        result = run(prof, own.url, None, tmp_path / "out", locustfile=never_ends)
    assert result.timed_out and not result.kept_up
    assert result.wall_s < 6.0 + runner.KILL_GRACE + 2
    assert any("stopped before" in r for r in result.reasons)
    left = [p for p in psutil.process_iter(["cmdline"])
            if any(str(never_ends) in part for part in (p.info["cmdline"] or []))]
    assert left == []


def test_cli_runs_a_profile_and_records_are_readable_while_it_runs(server, tmp_path):
    (tmp_path / "p.yaml").write_text("segments:\n  - {shape: constant, duration: 3s, rate: 10}\n")
    before = server.inference_count()
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "load", str(tmp_path / "p.yaml"),
                             "--url", server.url, "--host", "x.example.com", "--out", str(out),
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    partial: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            frame = read_records(out / "records.csv")
            if 0 < len(frame) < 30:
                partial.append(len(frame))
                assert list(frame.columns) == list(COLUMNS)
            time.sleep(0.2)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, stderr.decode()
    assert partial, "records were not readable while the run went on"
    summary = json.loads(stdout)
    assert summary["requests"] == 30 == server.inference_count() - before
    assert summary["rate"] == {"seconds": 3, "offered": 30.0, "achieved": 30.0}
    assert summary["kept_up"] is True and summary["pods"] == {"pod-load": 30}
    for name in ("records.csv", "per_second.csv", "summary.json", "status.jsonl"):
        assert (out / name).exists()


def test_service_errors_are_not_generator_failures(tmp_path):
    # 503 while the model loads: the requests fail, the generator still kept up
    prof = profile({"shape": "constant", "duration": "2s", "rate": 10})
    with LocalModelServer({"MODEL_LOAD_TIME": "30s"}) as loading:
        result = run(prof, loading.url, None, tmp_path)
        assert result.requests == 20 == loading.inference_count()
    assert set(result.records()["status"]) == {503}
    assert result.errors == 20 and result.summary["connection_errors"] == 0
    assert result.kept_up, result.reasons
    assert result.exit_code == 0
