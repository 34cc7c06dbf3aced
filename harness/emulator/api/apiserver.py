"""The aiohttp application: the Kubernetes REST surface over a :class:`Store`.

Paths are ``/api/v1/...`` and ``/apis/{group}/{version}/...`` followed by
``[namespaces/{ns}/]{plural}[/{name}[/{subresource}]]``; :func:`parse_resource_path` turns
them into a :class:`Target` and :func:`handle_resource` maps the HTTP verb onto the store.
Errors are :class:`ApiError` raised anywhere and rendered once, by a middleware, as
``kind: Status`` bodies. Watches stream newline-delimited JSON events, never blank lines
(client v36/v37 turn them into ``None`` events), end after ``timeoutSeconds`` and send
BOOKMARK events when asked. The fault middleware consults :class:`Faults` per request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from harness.emulator.api import (
    discovery,
    fieldvalidation,
    logs,
    printers,
    protobuf,
)
from harness.emulator.api.faults import Faults
from harness.emulator.api.openapi import OpenAPI
from harness.emulator.api.query import parse_bool, parse_int
from harness.emulator.api.registry import ResourceType
from harness.emulator.api.status import (
    ApiError,
    bad_request,
    method_not_allowed,
    status_body,
    unsupported_media_type,
)
from harness.emulator.api.store import PATCH_APPLY, PATCH_TYPES, Store

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class ServerSettings:
    """Knobs of the HTTP layer (the store has its own)."""

    bookmark_interval_s: float = 1.0
    """A BOOKMARK is sent after this long without events, when the client allows them."""
    default_watch_timeout_s: float = 1800.0
    """Watch length when the client gives no ``timeoutSeconds``."""


STORE_KEY = web.AppKey("store", Store)
FAULTS_KEY = web.AppKey("faults", Faults)
SETTINGS_KEY = web.AppKey("settings", ServerSettings)
OPENAPI_KEY = web.AppKey("openapi", OpenAPI)
LOGS_KEY = web.AppKey("pod_logs_root", logs.LogsRoot)


def json_response(body: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=json.dumps(body, separators=(",", ":")).encode(), status=status,
                        content_type="application/json", headers=headers)


# ---------------------------------------------------------------------------- paths


@dataclass(frozen=True)
class Target:
    """What a resource URL addresses."""

    rtype: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


def parse_resource_path(store: Store, path: str) -> Target | None:
    """``/api/v1/namespaces/ns/pods/p/status`` -> Target(pods, "ns", "p", "status")."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api" and parts[1] == "v1":
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    reg = store.registry
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3 and reg.by_url(group, version, rest[2]):
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        return None
    rtype = reg.by_url(group, version, rest[0])
    if rtype is None:
        return None
    if namespace is not None and not rtype.namespaced:
        return None
    name = rest[1] if len(rest) >= 2 else None
    sub = rest[2] if len(rest) == 3 else None
    if name is not None and rtype.namespaced and namespace is None:
        return None
    if sub is not None and not ((sub == "status" and rtype.status)
                                or (sub == "scale" and rtype.scale is not None)
                                or (sub == "log" and rtype.logs)):
        return None
    return Target(rtype, namespace, name, sub)


# ---------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class TableRequest:
    """What an ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` request asks."""

    api_version: str
    include_object: str


_INCLUDE_OBJECT = ("None", "Metadata", "Object")


def table_request(request: web.Request) -> TableRequest | None:
    """The Table the client accepts first, or None (plain JSON; the cheap common case)."""
    accept = request.headers.get("Accept", "")
    if "as=Table" not in accept:
        return None
    for media in accept.split(","):
        params = dict(p.strip().split("=", 1) for p in media.split(";")[1:] if "=" in p)
        if (params.get("as") == "Table" and params.get("g") == "meta.k8s.io"
                and params.get("v") in ("v1", "v1beta1")):
            include = request.query.get("includeObject") or "Metadata"
            if include not in _INCLUDE_OBJECT:
                raise bad_request(f"includeObject: Unsupported value: \"{include}\": "
                                  "supported values: \"None\", \"Metadata\", \"Object\"")
            return TableRequest(f"meta.k8s.io/{params['v']}", include)
    return None


def as_table(rt: ResourceType, tr: TableRequest, objects: list[dict[str, Any]], *,
             resource_version: str | None = None, continue_token: str | None = None,
             no_headers: bool = False) -> dict[str, Any]:
    return printers.table(rt.columns, objects, resource_version=resource_version,
                          continue_token=continue_token, include_object=tr.include_object,
                          no_headers=no_headers, api_version=tr.api_version)


# ---------------------------------------------------------------------------- bodies


async def read_body(request: web.Request, *, patch: bool = False) -> Any:
    raw = await request.read()
    ctype = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if not raw:
        if patch:
            raise bad_request("a patch body is required")
        raise bad_request("the request body is empty")
    if "protobuf" in ctype:
        if patch:
            raise unsupported_media_type(ctype)
        try:
            return protobuf.decode(raw)
        except protobuf.ProtobufError as exc:
            raise protobuf.unsupported(str(exc)) from exc
    try:
        if ctype in ("application/yaml", "application/apply-patch+yaml", "text/yaml"):
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise bad_request(f"the request body is not valid JSON: {exc}") from exc


# ---------------------------------------------------------------------------- handlers


async def handle_resource(request: web.Request) -> web.StreamResponse:
    store = request.app[STORE_KEY]
    target = parse_resource_path(store, request.path)
    if target is None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    q = request.query
    rt, ns, name, sub = target.rtype, target.namespace, target.name, target.subresource
    method = request.method
    if sub == "log":
        if method != "GET":
            raise method_not_allowed(f"{method} is not supported on {request.path}")
        assert name is not None and ns is not None
        return await logs.serve(request, store, request.app[LOGS_KEY], ns, name)
    if method == "GET":
        tr = table_request(request) if sub is None else None
        if name is None:
            if parse_bool(q.get("watch"), "watch"):
                return await stream_watch(request, target, tr)
            listed = store.list(
                rt, namespace=ns, label_selector=q.get("labelSelector"),
                field_selector=q.get("fieldSelector"),
                limit=parse_int(q.get("limit"), "limit"), continue_token=q.get("continue"),
                copy_items=False)
            if tr is not None:
                meta = listed.get("metadata") or {}
                return json_response(as_table(rt, tr, listed["items"],
                                              resource_version=meta.get("resourceVersion"),
                                              continue_token=meta.get("continue")))
            return json_response(listed)
        if sub == "scale":
            return json_response(store.get_scale(rt, name, namespace=ns))
        obj = store.get(rt, name, namespace=ns)
        if tr is not None:
            return json_response(as_table(rt, tr, [obj], resource_version=obj["metadata"].get(
                "resourceVersion")))
        return json_response(obj)
    dry_run = _dry_run(q)
    if method == "POST":
        if name is not None:
            raise method_not_allowed(f"POST is not supported on {request.path}")
        body = await read_body(request)
        warn = fieldvalidation.check(rt, body, q.get("fieldValidation"))
        return json_response(store.create(rt, body, namespace=ns, dry_run=dry_run),
                             status=201, headers=fieldvalidation.warning_header(warn))
    if method == "PUT":
        if name is None:
            raise method_not_allowed(f"PUT is not supported on {request.path}")
        body = await read_body(request)
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        if sub == "scale":
            return json_response(store.update_scale(rt, name, body, namespace=ns))
        body_name = (body.get("metadata") or {}).get("name")
        if body_name and body_name != name:
            raise bad_request(f"the name of the object ({body_name}) does not match the name "
                              f"on the URL ({name})")
        warn = fieldvalidation.check(rt, body, q.get("fieldValidation"))
        body.setdefault("metadata", {})["name"] = name
        return json_response(store.update(rt, body, namespace=ns, subresource=sub,
                                          dry_run=dry_run),
                             headers=fieldvalidation.warning_header(warn))
    if method == "PATCH":
        if name is None:
            raise method_not_allowed(f"PATCH is not supported on {request.path}")
        ctype = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if (ctype not in PATCH_TYPES or "/" not in ctype) and ctype != PATCH_APPLY:
            raise unsupported_media_type(ctype or "(none)")
        body = await read_body(request, patch=True)
        if sub == "scale":
            return json_response(store.patch_scale(rt, name, body, namespace=ns,
                                                   patch_type=ctype))
        mode = q.get("fieldValidation")
        if ctype == PATCH_APPLY:
            if not q.get("fieldManager"):
                raise bad_request("PATCH, application/apply-patch+yaml requires the "
                                  "fieldManager parameter")
            fieldvalidation.valid_mode(mode)
            fieldvalidation.check_apply(rt, body, ns, name)
            obj, created = store.apply(rt, name, body, namespace=ns, subresource=sub,
                                       dry_run=dry_run)
            return json_response(obj, status=201 if created else 200)
        warn = [] if ctype == "application/json-patch+json" else fieldvalidation.check(
            rt, body, mode)
        return json_response(store.patch(rt, name, body, namespace=ns, patch_type=ctype,
                                         subresource=sub, dry_run=dry_run),
                             headers=fieldvalidation.warning_header(warn))
    if method == "DELETE":
        opts: dict[str, Any] = {}
        if request.can_read_body:
            raw = await request.read()
            if raw.strip():
                try:
                    loaded = json.loads(raw)
                except ValueError as exc:
                    raise bad_request(f"invalid DeleteOptions body: {exc}") from exc
                if isinstance(loaded, dict):
                    opts = loaded
        grace = parse_int(q.get("gracePeriodSeconds"), "gracePeriodSeconds")
        if grace is None and opts.get("gracePeriodSeconds") is not None:
            grace = int(opts["gracePeriodSeconds"])
        policy = q.get("propagationPolicy") or opts.get("propagationPolicy")
        if policy is None and opts.get("orphanDependents") is True:
            policy = "Orphan"
        if name is None:
            if dry_run:
                return json_response(store.list(
                    rt, namespace=ns, label_selector=q.get("labelSelector"),
                    field_selector=q.get("fieldSelector")))
            return json_response(_delete_collection(store, rt, ns, q, grace, policy))
        if sub is not None:
            raise method_not_allowed(f"DELETE is not supported on {request.path}")
        if dry_run:
            return json_response(store.get(rt, name, namespace=ns))
        return json_response(store.delete(rt, name, namespace=ns, grace_period_seconds=grace,
                                          propagation_policy=policy,
                                          preconditions=opts.get("preconditions")))
    raise method_not_allowed(f"{method} is not supported")


def _dry_run(q: Any) -> bool:
    """``?dryRun=All`` (the only value the API accepts besides none)."""
    values = q.getall("dryRun", [])
    for v in values:
        if v != "All":
            raise bad_request(f"dryRun: Unsupported value: \"{v}\": supported values: "
                              "\"All\"")
    return bool(values)


def _delete_collection(store: Store, rt: ResourceType, ns: str | None, q: Any,
                       grace: int | None, policy: str | None) -> dict[str, Any]:
    listed = store.list(rt, namespace=ns, label_selector=q.get("labelSelector"),
                        field_selector=q.get("fieldSelector"))
    items = []
    for item in listed["items"]:
        meta = item["metadata"]
        try:
            items.append(store.delete(rt, meta["name"], namespace=meta.get("namespace"),
                                      grace_period_seconds=grace, propagation_policy=policy))
        except ApiError as exc:
            if exc.code != 404:
                raise
    return {**listed, "items": items}


async def stream_watch(request: web.Request, target: Target,
                       tr: TableRequest | None = None) -> web.StreamResponse:
    """Stream watch events as newline-delimited JSON until timeout, close or disconnect;
    with ``tr``, each object is a one-row Table (column definitions in the first only)."""
    store, settings = request.app[STORE_KEY], request.app[SETTINGS_KEY]
    q = request.query
    timeout = parse_int(q.get("timeoutSeconds"), "timeoutSeconds")
    bookmarks = bool(parse_bool(q.get("allowWatchBookmarks"), "allowWatchBookmarks"))
    initial = parse_bool(q.get("sendInitialEvents"), "sendInitialEvents")
    rt = target.rtype
    expired: ApiError | None = None
    try:
        w = store.watch(rt, namespace=target.namespace,
                        resource_version=q.get("resourceVersion"),
                        label_selector=q.get("labelSelector"),
                        field_selector=q.get("fieldSelector"), send_initial_events=initial)
        start_rv = store.resource_version
    except ApiError as exc:
        if exc.code != 410:
            raise
        expired = exc
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json",
                                                   "Cache-Control": "no-cache, private"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    if expired is not None:
        await resp.write(_line({"type": "ERROR", "object": expired.to_status()}))
        await resp.write_eof()
        return resp
    limit_s = float(timeout) if timeout is not None and timeout > 0 else (
        settings.default_watch_timeout_s)
    deadline = time.monotonic() + limit_s
    encode = _Encoder(rt, tr)
    try:
        if initial and bookmarks:
            first = await w.drain(0)
            await _write_events(resp, first, encode)
            await resp.write(encode.line(_bookmark(rt, start_rv, initial_end=True)))
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            wait = min(left, settings.bookmark_interval_s) if bookmarks else left
            events = await w.drain(wait)
            if events:
                await _write_events(resp, events, encode)
            elif w.closed:
                break
            elif bookmarks:
                rv = w.bookmark_rv()
                if rv is not None:
                    await resp.write(encode.line(_bookmark(rt, rv)))
        if bookmarks and not w.closed:
            rv = w.bookmark_rv()
            if rv is not None:
                await resp.write(encode.line(_bookmark(rt, rv)))
        await resp.write_eof()
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        w.stop()
    return resp


class _Encoder:
    """Watch events as JSON lines: plain objects, or one-row Tables when asked."""

    def __init__(self, rt: ResourceType, tr: TableRequest | None) -> None:
        self.rt, self.tr = rt, tr
        self.headers_sent = False

    def line(self, event: dict[str, Any]) -> bytes:
        if self.tr is None or event["type"] == "ERROR":
            return _line(event)
        obj = event["object"]
        if event["type"] == "BOOKMARK":
            table = {"kind": "Table", "apiVersion": self.tr.api_version,
                     "metadata": obj["metadata"], "rows": []}
        else:
            table = as_table(self.rt, self.tr, [obj], no_headers=self.headers_sent,
                             resource_version=obj["metadata"].get("resourceVersion"))
            self.headers_sent = True
        return _line({"type": event["type"], "object": table})


async def _write_events(resp: web.StreamResponse, events: list[Any], encode: _Encoder) -> None:
    if events:
        await resp.write(b"".join(encode.line(e.to_dict()) for e in events))


def _line(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def _bookmark(rt: ResourceType, rv: int, *, initial_end: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"type": "BOOKMARK",
            "object": {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}}


# ---------------------------------------------------------------------------- discovery


async def handle_version(request: web.Request) -> web.Response:
    return json_response(discovery.version())


async def handle_health(request: web.Request) -> web.Response:
    return web.Response(text="ok", content_type="text/plain")


async def handle_api(request: web.Request) -> web.Response:
    return json_response(discovery.core_versions(request.host))


async def handle_core_v1(request: web.Request) -> web.Response:
    body = discovery.resource_list(request.app[STORE_KEY].registry, "", "v1")
    return json_response(body)


async def handle_apis(request: web.Request) -> web.Response:
    return json_response(discovery.group_list(request.app[STORE_KEY].registry))


async def handle_group(request: web.Request) -> web.Response:
    body = discovery.group(request.app[STORE_KEY].registry, request.match_info["group"])
    if body is None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return json_response(body)


async def handle_group_version(request: web.Request) -> web.Response:
    body = discovery.resource_list(request.app[STORE_KEY].registry,
                                   request.match_info["group"], request.match_info["version"])
    if body is None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return json_response(body)


async def handle_openapi_v3_index(request: web.Request) -> web.Response:
    return json_response(request.app[OPENAPI_KEY].v3_index())


async def handle_openapi_v3(request: web.Request) -> web.Response:
    raw = request.app[OPENAPI_KEY].v3(request.match_info["gv"].strip("/"))
    if raw is None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    headers = {"Cache-Control": "public, immutable"} if request.query.get("hash") else None
    return web.Response(body=raw, content_type="application/json", headers=headers)


async def handle_openapi_v2(request: web.Request) -> web.Response:
    accept = request.headers.get("Accept", "")
    if accept and "json" not in accept and "*/*" not in accept:
        raise ApiError(406, "NotAcceptable",
                       f"only the following media types are accepted: application/json "
                       f"(the emulated API server does not encode OpenAPI v2 as protobuf; "
                       f"kubectl 1.27+ reads /openapi/v3); got {accept}")
    return web.Response(body=request.app[OPENAPI_KEY].v2(), content_type="application/json")


# ---------------------------------------------------------------------------- middlewares

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def status_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render :class:`ApiError` (and anything unexpected) as a ``kind: Status`` body."""
    try:
        return await handler(request)
    except ApiError as exc:
        return json_response(exc.to_status(), status=exc.code, headers=exc.headers)
    except web.HTTPException as exc:
        if exc.status_code < 400:
            raise
        reason = "NotFound" if exc.status_code == 404 else "BadRequest"
        return json_response(status_body(exc.status_code, reason, exc.reason),
                             status=exc.status_code)
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as exc:  # noqa: BLE001 - every failure must still be a Status
        log.exception("internal error on %s %s", request.method, request.path)
        return json_response(status_body(500, "InternalError", f"internal error: {exc}"),
                             status=500)


@web.middleware
async def inject_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Latency, 429 and 500 for resource requests, as :class:`Faults` says."""
    path = request.path
    if not (path.startswith("/api/v1/") or path.count("/") >= 4 and path.startswith("/apis/")):
        return await handler(request)
    is_watch = bool(parse_bool(request.query.get("watch"), "watch"))
    decision = request.app[FAULTS_KEY].decide(is_watch=is_watch)
    if decision.delay_s > 0:
        await asyncio.sleep(decision.delay_s)
    if decision.status == 429:
        raise ApiError(429, "TooManyRequests",
                       "the server has received too many requests and has asked us to try "
                       "again later", details={"retryAfterSeconds": decision.retry_after_s},
                       headers={"Retry-After": str(decision.retry_after_s)})
    if decision.status == 500:
        raise ApiError(500, "InternalError", "an error on the server (injected) has prevented "
                                             "the request from succeeding")
    return await handler(request)


def build_app(store: Store, *, faults: Faults | None = None,
              settings: ServerSettings | None = None,
              pod_logs_root: Path | None = None) -> web.Application:
    """The aiohttp application; serve it with an ``AppRunner`` (see ``process.py``)."""
    app = web.Application(middlewares=[status_errors, inject_faults],
                          client_max_size=16 * 1024 * 1024)
    app[STORE_KEY] = store
    app[FAULTS_KEY] = faults or Faults()
    app[SETTINGS_KEY] = settings or ServerSettings()
    app[OPENAPI_KEY] = OpenAPI(store.registry)
    app[LOGS_KEY] = logs.LogsRoot(pod_logs_root)
    app.add_routes([
        web.get("/version", handle_version),
        web.get("/healthz", handle_health),
        web.get("/livez", handle_health),
        web.get("/readyz", handle_health),
        web.get("/api", handle_api),
        web.get("/api/", handle_api),
        web.get("/api/v1", handle_core_v1),
        web.get("/api/v1/", handle_core_v1),
        web.get("/apis", handle_apis),
        web.get("/apis/", handle_apis),
        web.get("/apis/{group}", handle_group),
        web.get("/apis/{group}/", handle_group),
        web.get("/apis/{group}/{version}", handle_group_version),
        web.get("/apis/{group}/{version}/", handle_group_version),
        web.get("/openapi/v2", handle_openapi_v2),
        web.get("/openapi/v3", handle_openapi_v3_index),
        web.get("/openapi/v3/", handle_openapi_v3_index),
        web.get("/openapi/v3/{gv:.+}", handle_openapi_v3),
        web.route("*", "/api/v1/{tail:.+}", handle_resource),
        web.route("*", "/apis/{group}/{version}/{tail:.+}", handle_resource),
    ])
    return app
