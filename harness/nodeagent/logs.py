"""Container logs for ``kubectl logs``: the part of kubelet's API the API server calls.

``kubectl logs`` asks the API server (``pods/log``), which calls the pod's node at its
InternalIP and ``status.daemonEndpoints.kubeletEndpoint.Port``:
``GET /containerLogs/<namespace>/<pod>/<container>?tailLines=&limitBytes=&follow=&previous=``
over TLS with its kubelet client certificate. This server answers that from the runtime's
log files, on 127.0.0.1 only, and only to clients with a certificate of the cluster's CA.
A container with no log to show (``--previous`` with no earlier instance, one not started
yet) is kubelet's 400 with kubelet's words, which the API server passes on as BadRequest.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

LogLookup = Callable[[str, str, str, bool], "tuple[Path, Callable[[], bool]] | None"]
"""(namespace, pod, container, previous) -> (log file, is the container still running), or
None when the pod is not on this node; :class:`NoLog` for kubelet's 400."""


class NoLog(LookupError):
    """The container has no such log (kubelet's ``validateContainerLogStatus`` words)."""


def tail(data: bytes, lines: int) -> bytes:
    if lines < 0:
        return data
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:]) if lines else b""


class LogServer:
    """HTTPS on 127.0.0.1:<free port>; :attr:`port` is what the nodes advertise."""

    def __init__(self, lookup: LogLookup, *, cert: Path, key: Path, ca: Path) -> None:
        self.lookup = lookup
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(str(cert), str(key))
        tls.load_verify_locations(str(ca))
        tls.verify_mode = ssl.CERT_REQUIRED
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.serve_logs(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = int(self.httpd.server_address[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="node-logs",
                                        daemon=True)

    def start(self) -> LogServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def serve_logs(self, req: BaseHTTPRequestHandler) -> None:
        url = urlsplit(req.path)
        parts = url.path.strip("/").split("/")
        if len(parts) != 4 or parts[0] != "containerLogs":
            _plain(req, 404, "not found")
            return
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            found = self.lookup(parts[1], parts[2], parts[3],
                                q.get("previous") in ("true", "1"))
        except NoLog as exc:
            _plain(req, 400, str(exc))
            return
        if found is None:
            _plain(req, 404, f"pod {parts[1]}/{parts[2]} is not on this node")
            return
        path, running = found
        data = path.read_bytes() if path.exists() else b""
        data = tail(data, int(q.get("tailLines", -1)))
        if "limitBytes" in q:
            data = data[: int(q["limitBytes"])]
        req.send_response(200)
        req.send_header("Content-Type", "text/plain")
        follow = q.get("follow") in ("true", "1")
        if not follow:
            req.send_header("Content-Length", str(len(data)))
            req.end_headers()
            req.wfile.write(data)
            return
        req.end_headers()
        req.wfile.write(data)
        offset = path.stat().st_size if path.exists() else 0
        try:
            while not self._stop.is_set():
                req.wfile.flush()
                size = path.stat().st_size if path.exists() else 0
                if size > offset:
                    with open(path, "rb") as fh:
                        fh.seek(offset)
                        req.wfile.write(fh.read(size - offset))
                    offset = size
                elif not running():
                    return
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            return


def _plain(req: BaseHTTPRequestHandler, code: int, text: str) -> None:
    """A plain-text error body (the API server quotes it as the error's message)."""
    body = text.encode()
    req.send_response(code)
    req.send_header("Content-Type", "text/plain; charset=utf-8")
    req.send_header("Content-Length", str(len(body)))
    req.end_headers()
    req.wfile.write(body)
