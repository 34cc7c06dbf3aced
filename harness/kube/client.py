"""Connecting to a cluster and calling its API with retries.

:func:`load_api_client` reads a kubeconfig (or the in-cluster service account) for one
context; :class:`Kube` bundles that client with the context name, a
:class:`~harness.kube.safety.Guard` and a :class:`RetryPolicy`, and is the handle every
other module in :mod:`harness.kube` takes. :meth:`Kube.request` is a JSON REST call to
any path (core or custom resource) and :meth:`Kube.call` wraps a typed client method;
both go through :func:`with_retries`: exponential backoff with jitter on 429 (honouring
``Retry-After``), 500/502/503/504 and connection resets, bounded in attempts and time,
then :class:`RetriesExhausted`. Other errors (404, 409, 422...) are raised at once as the
client's ``ApiException``.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from harness.errors import UserError

if TYPE_CHECKING:
    from harness.kube.safety import Guard

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""HTTP statuses worth another try: throttled, or the server (or a proxy) failed."""

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,  # ConnectionResetError, ConnectionRefusedError, BrokenPipeError
    http.client.RemoteDisconnected,
    http.client.IncompleteRead,
    socket.timeout,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.MaxRetryError,
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.TimeoutError,
)


class KubeError(Exception):
    """A Kubernetes API call that did not succeed (beyond the client's ApiException)."""


class WaitTimeout(TimeoutError):
    """An awaited state did not arrive in time; the message names the last state seen."""


class RetriesExhausted(KubeError):
    """Every allowed attempt failed with a retryable error; ``last`` is the final one."""

    def __init__(self, what: str, attempts: int, elapsed: float, last: BaseException):
        self.attempts = attempts
        self.elapsed = elapsed
        self.last = last
        self.status = getattr(last, "status", None)
        super().__init__(f"{what}: gave up after {attempts} attempts in {elapsed:.1f} s; "
                         f"last error: {describe(last)}")


def describe(exc: BaseException) -> str:
    """One line for an API or connection error (no response body: it may hold secrets)."""
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason or ''}".strip()
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry: at most ``attempts`` tries and ``deadline_s`` seconds overall.

    The wait before try ``n`` (1-based, after a failure) is ``min(max_backoff_s,
    base_s * 2**(n-1))`` scaled by a random factor in ``[1 - jitter, 1]``; a 429's
    ``Retry-After`` replaces it when longer. A wait that would pass the deadline ends
    the retries at once.
    """

    attempts: int = 8
    base_s: float = 0.1
    max_backoff_s: float = 5.0
    deadline_s: float = 60.0
    jitter: float = 0.5

    def backoff(self, failures: int, rng: random.Random | None = None) -> float:
        raw = min(self.max_backoff_s, self.base_s * 2 ** max(0, failures - 1))
        r = (rng or random).uniform(1.0 - self.jitter, 1.0)
        return raw * r


DEFAULT_POLICY = RetryPolicy()


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, ApiException):
        # status 0: the client's wrapper around a transport failure (e.g. SSL EOF)
        return exc.status in RETRY_STATUSES or exc.status == 0
    return isinstance(exc, CONNECTION_ERRORS)


def retry_after(exc: BaseException) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form), if any."""
    headers = getattr(exc, "headers", None)
    if not headers:
        return None
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


def with_retries(fn: Callable[[], T], *, policy: RetryPolicy = DEFAULT_POLICY,
                 what: str = "API call", sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 on_retry: Callable[[int, BaseException, float], None] | None = None) -> T:
    """Call ``fn`` until it succeeds, a non-retryable error is raised, or the bounds end.

    ``on_retry(attempt, error, wait_s)`` is called before each wait (for tests and logs).
    """
    start = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except BaseException as exc:
            if not is_retryable(exc):
                raise
            elapsed = clock() - start
            wait = policy.backoff(attempt)
            hinted = retry_after(exc)
            if hinted is not None:
                wait = max(wait, hinted)
            if attempt >= policy.attempts or elapsed + wait > policy.deadline_s:
                raise RetriesExhausted(what, attempt, elapsed, exc) from exc
            log.debug("%s failed (%s); retry %d in %.2f s", what, describe(exc), attempt, wait)
            if on_retry is not None:
                on_retry(attempt, exc, wait)
            sleep(wait)


# ----------------------------------------------------------------------------- connecting


def _kubeconfig_path(kubeconfig: str | Path | None) -> str | None:
    if kubeconfig:
        return str(Path(kubeconfig).expanduser())
    return None


def kube_contexts(kubeconfig: str | Path | None = None) -> tuple[list[str], str | None]:
    """The context names in a kubeconfig and its current context."""
    try:
        contexts, active = k8s_config.list_kube_config_contexts(
            config_file=_kubeconfig_path(kubeconfig))
    except (k8s_config.ConfigException, OSError) as exc:
        raise UserError(f"cannot read the kubeconfig: {exc}",
                        where=str(kubeconfig) if kubeconfig else None) from None
    return [c["name"] for c in contexts], (active or {}).get("name")


def resolve_context(kubeconfig: str | Path | None = None, context: str | None = None) -> str:
    """The context a client would use: ``context`` if given (it must exist), else current."""
    names, active = kube_contexts(kubeconfig)
    if context:
        if context not in names:
            raise UserError(f"no context {context!r} in the kubeconfig (it has: "
                            f"{', '.join(names) or 'none'})",
                            where=str(kubeconfig) if kubeconfig else None)
        return context
    if not active:
        raise UserError("the kubeconfig has no current context; pass --context",
                        where=str(kubeconfig) if kubeconfig else None)
    return active


def load_api_client(kubeconfig: str | Path | None = None,
                    context: str | None = None) -> tuple[k8s.ApiClient, str]:
    """An ``ApiClient`` for ``context`` in ``kubeconfig`` (default: ``$KUBECONFIG`` or
    ``~/.kube/config``; the in-cluster service account when neither exists), and the
    context's name (``in-cluster`` for the service account)."""
    path = _kubeconfig_path(kubeconfig)
    default = os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())
    if path is None and not any(Path(p).exists() for p in default.split(os.pathsep)) \
            and os.environ.get("KUBERNETES_SERVICE_HOST"):
        k8s_config.load_incluster_config()
        return k8s.ApiClient(), "in-cluster"
    if path is not None and not Path(path).exists():
        raise UserError("kubeconfig not found", where=path)
    name = resolve_context(path, context)
    try:
        api = k8s_config.new_client_from_config(config_file=path, context=name)
    except (k8s_config.ConfigException, OSError) as exc:
        raise UserError(f"cannot load context {name!r}: {exc}", where=path) from None
    return api, name


# ----------------------------------------------------------------------------- the handle


class Kube:
    """A connected cluster: ``api_client``, ``context``, ``guard`` and ``retry`` policy.

    Parameters: ``api_client`` an official ``ApiClient``; ``context`` the kubeconfig
    context's name (what the allow-list is checked against); ``guard`` the safety guard
    every write must pass (default: one for ``context`` that allows nothing to be
    written until :mod:`harness.kube.safety` says so); ``retry`` the retry policy.
    """

    def __init__(self, api_client: k8s.ApiClient, *, context: str = "",
                 guard: Guard | None = None, retry: RetryPolicy = DEFAULT_POLICY,
                 request_timeout: float = 30.0) -> None:
        from harness.kube.safety import Guard

        self.api_client = api_client
        _disable_transport_retries(api_client)
        self.context = context
        self.guard = guard if guard is not None else Guard(context)
        if self.guard.lookup is None:
            self.guard.lookup = self._lookup_namespace
        self.retry = retry
        self.request_timeout = request_timeout
        self._core: k8s.CoreV1Api | None = None
        self._custom: k8s.CustomObjectsApi | None = None

    @classmethod
    def connect(cls, kubeconfig: str | Path | None = None, context: str | None = None, *,
                guard: Guard | None = None, retry: RetryPolicy = DEFAULT_POLICY) -> Kube:
        api, name = load_api_client(kubeconfig, context)
        if guard is not None and not guard.context:
            guard.context = name
        return cls(api, context=name, guard=guard, retry=retry)

    @property
    def core(self) -> k8s.CoreV1Api:
        if self._core is None:
            self._core = k8s.CoreV1Api(self.api_client)
        return self._core

    @property
    def custom(self) -> k8s.CustomObjectsApi:
        if self._custom is None:
            self._custom = k8s.CustomObjectsApi(self.api_client)
        return self._custom

    @property
    def host(self) -> str:
        return str(self.api_client.configuration.host)

    def close(self) -> None:
        self.api_client.close()

    def __enter__(self) -> Kube:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lookup_namespace(self, name: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", f"/api/v1/namespaces/{name}")  # type: ignore[no-any-return]
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    # ------------------------------------------------------------------ calls

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` (a typed client method) with retries."""
        name = getattr(fn, "__name__", "API call")
        return with_retries(lambda: fn(*args, **kwargs), policy=self.retry, what=name)

    def _send(self, method: str, path: str, *, query: Mapping[str, Any] | None = None,
              body: Any = None, content_type: str | None = None,
              timeout: float | tuple[float, float] | None = None
              ) -> urllib3.BaseHTTPResponse:
        """One raw HTTP call through the client's own urllib3 pool (TLS, proxy, client
        certificates) with its auth headers. The typed clients' ``param_serialize`` /
        ``call_api`` differ between client majors (37 vs 30-36); the pool does not."""
        cfg = self.api_client.configuration
        headers = {"Accept": "application/json", "User-Agent": "harness"}
        for auth in cfg.auth_settings().values():  # refreshes exec/token credentials
            if auth.get("in") == "header" and auth.get("value"):
                headers[auth["key"]] = auth["value"]
        data = None
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        params = [(k, _query_value(v)) for k, v in (query or {}).items() if v is not None]
        url = cfg.host.rstrip("/") + path + ("?" + urlencode(params) if params else "")
        t = timeout if timeout is not None else self.request_timeout
        tmo = (urllib3.Timeout(connect=t[0], read=t[1]) if isinstance(t, tuple)
               else urllib3.Timeout(total=t) if t is not None else None)
        return self.api_client.rest_client.pool_manager.request(  # type: ignore[no-any-return]
            method, url, body=data, headers=headers, preload_content=False, timeout=tmo,
            retries=False)

    def request(self, method: str, path: str, *, query: Mapping[str, Any] | None = None,
                body: Any = None, content_type: str | None = None,
                timeout: float | None = None, retry: bool = True) -> Any:
        """One JSON REST call (``GET /api/v1/namespaces``...) -> the decoded body.

        Raises ``ApiException`` for an error status and :class:`RetriesExhausted` when
        retryable failures outlast the policy. Writes are *not* checked here: the
        modules that write call ``kube.guard`` first.
        """
        def once() -> Any:
            resp = self._send(method, path, query=query, body=body,
                              content_type=content_type, timeout=timeout)
            try:
                data = resp.read()
            finally:
                resp.release_conn()
            if not 200 <= resp.status <= 299:
                raise _api_exception(resp, data)
            return json.loads(data) if data else None

        if not retry:
            return once()
        return with_retries(once, policy=self.retry, what=f"{method} {path}")

    def open_stream(self, path: str, *, query: Mapping[str, Any],
                    timeout: tuple[float, float]) -> urllib3.BaseHTTPResponse:
        """Start a streaming GET (a watch); the caller reads lines and closes it.
        Not retried: :mod:`harness.kube.watch` owns reconnecting."""
        resp = self._send("GET", path, query=query, timeout=timeout)
        if not 200 <= resp.status <= 299:
            data = resp.read()
            resp.release_conn()
            raise _api_exception(resp, data)
        return resp


def _disable_transport_retries(api_client: k8s.ApiClient) -> None:
    """Turn off urllib3's own retries (it would sleep on 429/503 ``Retry-After`` up to
    three times per call, outside our bounds), so :func:`with_retries` alone decides."""
    cfg = api_client.configuration
    if cfg.retries is not None:
        return
    cfg.retries = urllib3.Retry(total=0, connect=0, read=0, redirect=0, status=0,
                                respect_retry_after_header=False, raise_on_redirect=False,
                                raise_on_status=False)
    from kubernetes.client.rest import RESTClientObject

    api_client.rest_client = RESTClientObject(cfg)


def _api_exception(resp: urllib3.BaseHTTPResponse, data: bytes) -> ApiException:
    """The client's ApiException for an error response, the same on client majors 30-37."""
    exc = ApiException(status=resp.status, reason=resp.reason)
    exc.body = data.decode("utf-8", "replace")
    exc.headers = resp.headers
    return exc


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
