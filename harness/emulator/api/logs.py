"""``GET /api/v1/namespaces/{ns}/pods/{name}/log``: a container's log, as the kubelet
captured it (:mod:`.podlogs`), with the API server's words for what is not there.

``container`` (needed when the pod has more than one), ``previous``, ``tailLines``,
``sinceSeconds``/``sinceTime``, ``timestamps``, ``limitBytes`` and ``follow``: a followed
log streams new lines until the container instance ends (its pod goes, it restarts or
its status says terminated) or the client leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from harness.emulator.api.podlogs import LogQuery, log_path, read_lines, same_file
from harness.emulator.api.query import parse_bool, parse_int
from harness.emulator.api.status import ApiError, bad_request
from harness.emulator.api.store import Store
from harness.objects import parse_time

FOLLOW_POLL_S = 0.2


@dataclass(frozen=True)
class LogsRoot:
    """The kubelet's folder of container logs (None: no kubelet runs pods)."""

    path: Path | None


def _query(q: Any) -> LogQuery:
    tail = parse_int(q.get("tailLines"), "tailLines")
    since_s = parse_int(q.get("sinceSeconds"), "sinceSeconds")
    limit = parse_int(q.get("limitBytes"), "limitBytes")
    since_time = q.get("sinceTime")
    if since_s is not None and since_time:
        raise _invalid("at most one of sinceTime or sinceSeconds may be specified")
    if since_s is not None and since_s < 1:
        raise _invalid(f"sinceSeconds: Invalid value: {since_s}: must be greater than 0")
    if tail is not None and tail < 0:
        raise _invalid(f"tailLines: Invalid value: {tail}: must be greater than or equal "
                       "to 0")
    if limit is not None and limit < 1:
        raise _invalid(f"limitBytes: Invalid value: {limit}: must be greater than 0")
    since: float | None = time.time() - since_s if since_s is not None else None
    if since_time:
        since = parse_time(since_time)
        if since is None:
            raise bad_request(f"invalid sinceTime {since_time!r}")
    return LogQuery(tail_lines=tail, since_time=since,
                    timestamps=bool(parse_bool(q.get("timestamps"), "timestamps")),
                    limit_bytes=limit)


def _invalid(message: str) -> ApiError:
    return ApiError(422, "Invalid", f'PodLogOptions "" is invalid: {message}')


def _container(pod: dict[str, Any], wanted: str | None) -> str:
    spec = pod.get("spec") or {}
    names = [str(c.get("name")) for c in spec.get("containers") or []]
    init = [str(c.get("name")) for c in spec.get("initContainers") or []]
    name = pod["metadata"]["name"]
    if not wanted:
        if len(names) == 1:
            return names[0]
        raise bad_request(f"a container name must be specified for pod {name}, choose one "
                          f"of: [{' '.join(names)}] or one of the init containers: "
                          f"[{' '.join(init)}]" if init else
                          f"a container name must be specified for pod {name}, choose one "
                          f"of: [{' '.join(names)}]")
    if wanted not in names and wanted not in init:
        raise bad_request(f"container {wanted} is not valid for pod {name}")
    return wanted


def _terminated(pod: dict[str, Any] | None, container: str) -> bool:
    for cs in (pod or {}).get("status", {}).get("containerStatuses") or []:
        if cs.get("name") == container:
            return "terminated" in (cs.get("state") or {})
    return False


async def serve(request: web.Request, store: Store, root: LogsRoot, namespace: str,
                name: str) -> web.StreamResponse:
    q = request.query
    pod = store.get("pods", name, namespace=namespace)
    container = _container(pod, q.get("container"))
    previous = bool(parse_bool(q.get("previous"), "previous"))
    query = _query(q)
    follow = bool(parse_bool(q.get("follow"), "follow"))
    path = (log_path(root.path, namespace, name, container, previous=previous)
            if root.path is not None else None)
    if path is None or not path.exists():
        if previous:
            raise bad_request(f'previous terminated container "{container}" in pod "{name}" '
                              "not found")
        raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: '
                          "ContainerCreating")
    lines, offset = read_lines(path)
    body = query.body(lines)
    headers = {"Content-Type": "text/plain", "Cache-Control": "no-cache, private"}
    if not follow or previous:
        return web.Response(body=body, headers=headers)
    resp = web.StreamResponse(status=200, headers=headers)
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    sent = len(body)
    inode = path.stat().st_ino
    uid = pod["metadata"]["uid"]
    stream = LogQuery(timestamps=query.timestamps)
    with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
        if body:
            await resp.write(body)
        while query.limit_bytes is None or sent < query.limit_bytes:
            await asyncio.sleep(FOLLOW_POLL_S)
            new, offset = read_lines(path, offset) if same_file(path, inode) else ([], offset)
            if new:
                chunk = stream.body(new)
                if query.limit_bytes is not None:
                    chunk = chunk[:query.limit_bytes - sent]
                await resp.write(chunk)
                sent += len(chunk)
                continue
            current = store.try_get("pods", name, namespace=namespace)
            if (current is None or current["metadata"]["uid"] != uid
                    or not same_file(path, inode) or _terminated(current, container)):
                break
        await resp.write_eof()
    return resp
