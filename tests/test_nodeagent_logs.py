"""The node agent's log endpoint (what the API server calls for ``kubectl logs``): TLS with
a client certificate of the cluster CA required, tailLines, unknown containers 404."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest

from harness.nodeagent.logs import LogServer
from harness.upstream.pki import make_pki


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    pki = make_pki(tmp_path / "pki", service_ip="198.19.0.1", advertise_ip="198.18.0.1",
                   extra_serving={"nodeagent": ["localhost", "127.0.0.1"]})
    log = tmp_path / "c.log"
    log.write_text("one\ntwo\nthree\n")
    srv = LogServer(lambda ns, pod, c, prev: (log, lambda: False) if (ns, pod, c) == ("n", "p", "c")
                    else None, cert=pki.directory / "nodeagent.crt",
                    key=pki.directory / "nodeagent.key", ca=pki.ca_cert).start()
    yield srv, pki
    srv.stop()


def _client(pki, user: str | None):  # type: ignore[no-untyped-def]
    tls = ssl.create_default_context(cafile=str(pki.ca_cert))
    if user:
        tls.load_cert_chain(str(pki.client_cert(user)), str(pki.client_key(user)))
    return httpx.Client(verify=tls, timeout=5)


def test_logs_tail_and_404(server) -> None:  # type: ignore[no-untyped-def]
    srv, pki = server
    base = f"https://127.0.0.1:{srv.port}/containerLogs/n/p"
    with _client(pki, "apiserver-kubelet-client") as c:
        assert c.get(f"{base}/c").text == "one\ntwo\nthree\n"
        assert c.get(f"{base}/c", params={"tailLines": "2"}).text == "two\nthree\n"
        assert c.get(f"{base}/c", params={"follow": "true"}).text == "one\ntwo\nthree\n"
        assert c.get(f"{base}/other").status_code == 404


def test_logs_need_a_client_certificate(server) -> None:  # type: ignore[no-untyped-def]
    srv, pki = server
    with _client(pki, None) as c, pytest.raises(httpx.HTTPError):
        c.get(f"https://127.0.0.1:{srv.port}/containerLogs/n/p/c")
