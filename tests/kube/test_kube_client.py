"""Connecting and retrying: 429 (with Retry-After), 500 and connection resets are retried
with backoff until the bounds; other errors are raised at once."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from harness.emulator import Emulator
from harness.errors import UserError
from harness.kube.client import (
    Kube,
    RetriesExhausted,
    RetryPolicy,
    load_api_client,
    resolve_context,
    with_retries,
)


def _current(kubeconfig: Path) -> str:
    return str(yaml.safe_load(kubeconfig.read_text())["current-context"])


def test_load_api_client_names_the_context(kubeconfig: Path) -> None:
    api, context = load_api_client(kubeconfig)
    assert context == _current(kubeconfig)  # harness-local on the emulator
    assert resolve_context(kubeconfig, context) == context
    api.close()


def test_unknown_context_and_missing_file_are_user_errors(kubeconfig: Path,
                                                          tmp_path: Path) -> None:
    with pytest.raises(UserError, match=f"no context 'nope'.*{_current(kubeconfig)}"):
        load_api_client(kubeconfig, "nope")
    with pytest.raises(UserError, match="kubeconfig not found"):
        load_api_client(tmp_path / "missing")


def test_requests_succeed_through_injected_429s_and_500s(kube: Kube,
                                                         emulator: Emulator) -> None:
    emulator.faults.set(throttle_share=0.2, error_share=0.2, retry_after_s=0)
    # 15 attempts: all failing has odds 0.4**15 (1e-6) per call
    patient = Kube(kube.api_client, context=kube.context, guard=kube.guard,
                   retry=RetryPolicy(attempts=15, base_s=0.001, max_backoff_s=0.01))
    before = dict(emulator.faults.injected)
    for _ in range(30):
        doc = patient.request("GET", "/api/v1/namespaces")
        assert doc["kind"] == "NamespaceList"
    injected = {k: emulator.faults.injected[k] - before[k] for k in before}
    assert injected[429] > 0 and injected[500] > 0  # faults were hit, and survived


def test_typed_client_calls_are_retried_too(kube: Kube, emulator: Emulator) -> None:
    emulator.faults.set(error_share=0.3)  # 6 failures in a row: odds 7e-4 per call
    for _ in range(10):
        assert kube.call(kube.core.list_node).items


def test_gives_up_after_the_attempt_bound(kube: Kube, emulator: Emulator) -> None:
    emulator.faults.set(error_share=1.0)
    before = emulator.faults.injected[500]
    with pytest.raises(RetriesExhausted, match="gave up after 6 attempts.*HTTP 500") as info:
        kube.request("GET", "/api/v1/nodes")
    assert info.value.status == 500 and info.value.attempts == 6
    assert emulator.faults.injected[500] - before == 6


def test_retry_after_is_honoured_and_bounded_by_the_deadline(kube: Kube,
                                                             emulator: Emulator) -> None:
    emulator.faults.set(throttle_share=1.0, retry_after_s=1)
    slow = Kube(kube.api_client, context=kube.context, guard=kube.guard,
                retry=RetryPolicy(attempts=10, base_s=0.01, max_backoff_s=0.05,
                                  deadline_s=2.5))
    t0 = time.monotonic()
    with pytest.raises(RetriesExhausted) as info:
        slow.request("GET", "/api/v1/nodes")
    elapsed = time.monotonic() - t0
    # waits of 1 s (Retry-After, not the 0.05 s backoff) until the 2.5 s deadline
    assert info.value.status == 429 and info.value.attempts == 3
    assert 1.9 <= elapsed < 3.0


def test_non_retryable_errors_are_raised_at_once(kube: Kube, emulator: Emulator) -> None:
    with pytest.raises(ApiException) as info:
        kube.request("GET", "/api/v1/namespaces/default/pods/no-such-pod")
    assert info.value.status == 404


def test_connection_resets_are_retried() -> None:
    """A server that resets the first two connections, then answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    seen = []

    def serve() -> None:
        for i in range(3):
            conn, _ = srv.accept()
            seen.append(i)
            conn.recv(65536)
            if i < 2:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                conn.close()  # RST
                continue
            body = b'{"kind":"NamespaceList","items":[]}'
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                         % (len(body), body))
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    from kubernetes import client as k8s

    cfg = k8s.Configuration()
    cfg.host = f"http://127.0.0.1:{port}"
    cfg.retries = False  # no urllib3-level retries: the harness's own must do it
    kube = Kube(k8s.ApiClient(cfg), retry=RetryPolicy(attempts=5, base_s=0.01))
    try:
        assert kube.request("GET", "/api/v1/namespaces")["items"] == []
    finally:
        kube.close()
        srv.close()
    t.join(5)
    assert seen == [0, 1, 2]


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(base_s=0.1, max_backoff_s=1.0, jitter=0.5)
    for n, raw in ((1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)):
        for _ in range(20):
            assert raw * 0.5 <= policy.backoff(n) <= raw


def test_with_retries_reports_each_wait() -> None:
    calls: list[int] = []
    waits: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError("reset by peer")
        return "ok"

    out = with_retries(flaky, policy=RetryPolicy(base_s=0.01), sleep=waits.append,
                       on_retry=lambda a, e, w: None)
    assert out == "ok" and len(calls) == 3 and len(waits) == 2
