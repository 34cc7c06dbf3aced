"""The reference model server as a local process: protocols, settings, pod header, drain."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
MS_ROOT = ROOT / "fixtures" / "modelserver"
sys.path.insert(0, str(MS_ROOT))

from modelserver import POD_HEADER  # noqa: E402
from modelserver.local import SAMPLE_MODEL_DIR, LocalModelServer  # noqa: E402
from modelserver.model import ModelError, load_model  # noqa: E402
from modelserver.settings import Settings, SettingsError, parse_seconds  # noqa: E402

X = [1.0, 2.0, 3.0, 4.0]


def expected(row: list[float]) -> list[float]:
    model = load_model(SAMPLE_MODEL_DIR)
    return [sum(w * x for w, x in zip(ws, row, strict=True)) + b
            for ws, b in zip(model.weights, model.bias, strict=True)]


@pytest.fixture(scope="module")
def server():
    with LocalModelServer(pod_name="pod-a") as srv:
        srv.wait_ready()
        yield srv


def test_v1_predict_and_pod_header(server):
    r = httpx.post(f"{server.url}/v1/models/linear:predict", json={"instances": [X, X]})
    assert r.status_code == 200
    assert r.headers[POD_HEADER] == "pod-a"
    assert r.json()["predictions"] == [pytest.approx(expected(X))] * 2


def test_v1_metadata_and_errors(server):
    assert httpx.get(f"{server.url}/v1/models").json() == {"models": ["linear"]}
    assert httpx.get(f"{server.url}/v1/models/linear").json() == {"name": "linear", "ready": True}
    missing = httpx.post(f"{server.url}/v1/models/other:predict", json={"instances": [X]})
    assert missing.status_code == 404 and "other" in missing.json()["error"]
    assert missing.headers[POD_HEADER] == "pod-a"
    bad = httpx.post(f"{server.url}/v1/models/linear:predict", json={"instances": [[1, 2]]})
    assert bad.status_code == 400 and "4 numbers" in bad.json()["error"]
    assert httpx.post(f"{server.url}/v1/models/linear:predict", content=b"{").status_code == 400


def test_v2_endpoints(server):
    u = server.url
    assert httpx.get(f"{u}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{u}/v2/health/ready").json() == {"ready": True}
    assert httpx.get(f"{u}/v2/models/linear/ready").json() == {"name": "linear", "ready": True}
    meta = httpx.get(f"{u}/v2/models/linear").json()
    assert meta["inputs"][0]["shape"] == [-1, 4] and meta["outputs"][0]["shape"] == [-1, 3]
    body = {"id": "r1", "inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32",
                                    "data": X + X}]}
    r = httpx.post(f"{u}/v2/models/linear/infer", json=body)
    assert r.status_code == 200 and r.headers[POD_HEADER] == "pod-a"
    out = r.json()
    assert out["id"] == "r1" and out["model_name"] == "linear"
    assert out["outputs"][0]["shape"] == [2, 3]
    assert out["outputs"][0]["data"] == pytest.approx(expected(X) * 2)
    versioned = httpx.post(f"{u}/v2/models/linear/versions/1/infer", json=body)
    assert versioned.status_code == 200
    wrong = dict(body, inputs=[dict(body["inputs"][0], shape=[3, 4])])
    assert httpx.post(f"{u}/v2/models/linear/infer", json=wrong).status_code == 400


def test_metrics_count_every_request():
    with LocalModelServer(pod_name="count") as srv:
        srv.wait_ready()
        before = srv.inference_count()
        with httpx.Client() as c:
            for _ in range(7):
                c.post(f"{srv.url}/v1/models/linear:predict", json={"instances": [X]})
            for _ in range(5):
                c.post(f"{srv.url}/v2/models/linear/infer",
                       json={"inputs": [{"name": "i", "shape": [1, 4], "datatype": "FP32",
                                         "data": X}]})
            c.post(f"{srv.url}/v1/models/nope:predict", json={"instances": [X]})
        assert srv.inference_count() - before == 13
        counts = srv.request_counts()
        assert counts[("v1_predict", 200)] == 7 and counts[("v2_infer", 200)] == 5
        assert counts[("v1_predict", 404)] == 1


def test_load_time_then_ready():
    with LocalModelServer({"MODEL_LOAD_TIME": "1s"}) as srv:
        t0 = time.monotonic()
        assert srv.get_status("/v2/health/live") == 200
        assert srv.get_status("/v2/health/ready") == 503
        assert srv.get_status("/v2/models/linear/ready") == 503
        r = httpx.post(f"{srv.url}/v1/models/linear:predict", json={"instances": [X]})
        assert r.status_code == 503
        srv.wait_ready(timeout=10)
        assert time.monotonic() - t0 >= 0.8
        assert srv.get_status("/v1/models/linear") == 200


def test_request_latency_and_compute_rounds():
    with LocalModelServer({"REQUEST_LATENCY": "200ms", "COMPUTE_ROUNDS": "50"}) as srv:
        srv.wait_ready()
        t0 = time.perf_counter()
        r = httpx.post(f"{srv.url}/v1/models/linear:predict", json={"instances": [X]})
        took = time.perf_counter() - t0
        assert r.status_code == 200 and r.json()["predictions"] == [pytest.approx(expected(X))]
        assert 0.2 <= took < 1.5


def test_sigterm_finishes_in_flight_requests():
    srv = LocalModelServer({"REQUEST_LATENCY": "1s", "SHUTDOWN_GRACE": "10s"})
    try:
        srv.start()
        srv.wait_ready()
        result: dict = {}

        def slow() -> None:
            try:
                r = httpx.post(f"{srv.url}/v1/models/linear:predict",
                               json={"instances": [X]}, timeout=10)
                result["status"], result["pod"] = r.status_code, r.headers.get(POD_HEADER)
            except httpx.HTTPError as exc:  # pragma: no cover - reported by the assert
                result["error"] = repr(exc)

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.4)
        os.kill(srv.proc.pid, signal.SIGTERM)
        time.sleep(0.2)
        # the listener is closed: a new connection is refused while the old request runs
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{srv.url}/v2/health/live", timeout=2)
        t.join(10)
        assert result == {"status": 200, "pod": "local-0"}
        assert srv.proc.wait(10) == 0
    finally:
        srv.stop()
    assert "modelserver draining" in srv.output and "modelserver stopped" in srv.output


def test_bad_setting_exits_2():
    env = {**os.environ, "PYTHONPATH": str(MS_ROOT), "REQUEST_LATENCY": "soon", "PORT": "0"}
    p = subprocess.run([sys.executable, "-m", "modelserver"], env=env, capture_output=True,
                       text=True, timeout=20)
    assert p.returncode == 2
    assert p.stderr.strip() == "modelserver: error: REQUEST_LATENCY='soon' is not a duration " \
        "(e.g. 250ms, 2s)"


def test_settings_and_model_units(tmp_path):
    assert parse_seconds("X", "1m30s") == 90 and parse_seconds("X", "0.25") == 0.25
    with pytest.raises(SettingsError):
        parse_seconds("X", "-1")
    s = Settings.from_env({"PORT": "0", "POD_NAME": "p", "MAX_CONCURRENCY": "3"})
    assert (s.port, s.pod_name, s.max_concurrency, s.model_dir) == (0, "p", 3, "/mnt/models")
    with pytest.raises(ModelError, match="no model file"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text('{"format": "linear/v1", "weights": [[1]], "bias": []}')
    with pytest.raises(ModelError, match="bias"):
        load_model(tmp_path)


def test_dockerfile_builds_the_same_server():
    text = (MS_ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", text, re.M)
    for src in re.findall(r"^COPY (\S+) ", text, re.M):
        assert (MS_ROOT / src).exists(), src
    assert 'CMD ["python", "-m", "modelserver"]' in text
    assert "MODEL_DIR=/mnt/models" in text and "EXPOSE 8080" in text
    assert (MS_ROOT / "modelserver" / "__main__.py").exists()
    assert "aiohttp" in (MS_ROOT / "requirements.txt").read_text()


def test_kserve_flags_name_the_model_as_a_serving_runtime_does():
    """The ServingRuntime passes --model_name={{.Name}} (the InferenceService's name),
    --model_dir and --http_port; they override MODEL_NAME/MODEL_DIR/PORT. KServe's own
    curl example then answers on /v1/models/cpu-small:predict, and the file's name 404s."""
    s = Settings.from_args(["--model_name=cpu-small", "--model_dir=/mnt/x", "--http_port=9"],
                           {"MODEL_NAME": "other", "MODEL_DIR": "/y", "PORT": "8080"})
    assert (s.model_name, s.model_dir, s.port) == ("cpu-small", "/mnt/x", 9)
    assert Settings.from_args([], {"MODEL_NAME": "env-name"}).model_name == "env-name"
    with pytest.raises(SettingsError, match="unrecognized arguments: --nope"):
        Settings.from_args(["--nope"], {})
    with LocalModelServer(args=["--model_name=cpu-small", f"--model_dir={SAMPLE_MODEL_DIR}"],
                          pod_name="p") as srv:
        srv.wait_ready()
        r = httpx.post(f"{srv.url}/v1/models/cpu-small:predict", json={"instances": [X]})
        assert r.status_code == 200 and r.json()["predictions"] == [expected(X)]
        assert httpx.get(f"{srv.url}/v1/models").json() == {"models": ["cpu-small"]}
        body = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32",
                            "data": X}]}
        assert httpx.post(f"{srv.url}/v2/models/cpu-small/infer", json=body).status_code == 200
        assert httpx.post(f"{srv.url}/v1/models/linear:predict",
                          json={"instances": [X]}).status_code == 404


def test_a_bad_flag_exits_2_with_one_line():
    p = subprocess.run([sys.executable, "-m", "modelserver", "--model_nam=x"],
                       env={**os.environ, "PYTHONPATH": str(MS_ROOT)}, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        "modelserver: error: unrecognized arguments: --model_nam=x"]
