"""The controller of our Knative ingress: watches Ingresses (ours by class annotation) and
Services, programs :class:`~harness.upstream.ingress.proxy.IngressProxy`, writes status.

Two list+watch loops (``networking.internal.knative.dev/v1alpha1`` ingresses and core
services, all namespaces) keep caches; any change schedules one reconcile (coalesced):
the route tables are rebuilt from every Ingress of our class and swapped into the proxy
(same process, so routes are live when the call returns: there is no Envoy to wait for,
which is why the status is written right after, as Kourier's first versions did), then
each Ingress whose status differs from :func:`~harness.upstream.ingress.routes.
desired_status` gets it through the ``status`` subresource (JSON merge patch). Until the
Ingress CRD exists (Knative not installed yet) the ingress loop retries every 2 s.
Watches resume after errors with a fresh list (1 s back-off; a watch that ends within a
second also waits a second).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from harness.objects import format_time
from harness.upstream.ingress.proxy import IngressProxy
from harness.upstream.ingress.routes import (
    GROUP,
    INGRESS_CLASS,
    VERSION,
    build_tables,
    desired_status,
    is_ours,
    problems,
    same_status,
)

log = logging.getLogger(__name__)
INGRESSES = f"/apis/{GROUP}/{VERSION}/ingresses"
SERVICES = "/api/v1/services"
Key = tuple[str, str]


def client_from_kubeconfig(path: str | Path) -> httpx.AsyncClient:
    """An async client for the kubeconfig's current context (certificate files or data
    paths as :func:`harness.upstream.control_plane.kubeconfig_dict` writes them)."""
    cfg = yaml.safe_load(Path(path).read_text())
    ctx_name = cfg.get("current-context")
    ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
    cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
    user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
    tls = ssl.create_default_context(cafile=cluster["certificate-authority"])
    tls.load_cert_chain(user["client-certificate"], user["client-key"])
    return httpx.AsyncClient(base_url=cluster["server"], verify=tls, timeout=10.0)


class IngressController:
    """See the module docstring. ``public_domain``/``private_domain``: the Services'
    cluster names written as the load balancers' ``domainInternal``."""

    def __init__(self, client: httpx.AsyncClient, proxy: IngressProxy, *,
                 public_domain: str, private_domain: str,
                 ingress_class: str = INGRESS_CLASS,
                 clock: Callable[[], str] = format_time) -> None:
        self.client = client
        self.proxy = proxy
        self.public_domain = public_domain
        self.private_domain = private_domain
        self.ingress_class = ingress_class
        self.clock = clock
        self.ingresses: dict[Key, dict[str, Any]] = {}
        self.services: dict[Key, dict[str, Any]] = {}
        self.errors: list[str] = []
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self.reconciles = 0

    async def start(self) -> IngressController:
        self._tasks = [asyncio.create_task(self._loop(INGRESSES, self.ingresses, 2.0)),
                       asyncio.create_task(self._loop(SERVICES, self.services, 1.0)),
                       asyncio.create_task(self._reconciler())]
        return self

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # ---- caches -------------------------------------------------------------------------

    def _note(self, message: str) -> None:
        if not self.errors or self.errors[-1] != message:
            log.warning("%s", message)
        self.errors = [*self.errors[-20:], message]

    async def _loop(self, path: str, cache: dict[Key, dict[str, Any]], retry_s: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                rv = await self._list(path, cache)
                began = loop.time()
                await self._watch(path, cache, rv)
                if loop.time() - began < 1.0:   # a watch that ends at once: no busy loop
                    await asyncio.sleep(1.0)
            except asyncio.CancelledError:
                raise
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                self._note(f"{path}: {exc!r}")
                await asyncio.sleep(retry_s)

    async def _list(self, path: str, cache: dict[Key, dict[str, Any]]) -> str:
        r = await self.client.get(path)
        if r.status_code == 404:
            raise ValueError(f"{path} not served (is the CRD installed?)")
        r.raise_for_status()
        body = r.json()
        cache.clear()
        for obj in body.get("items") or []:
            meta = obj["metadata"]
            cache[(meta.get("namespace", ""), meta["name"])] = obj
        self._dirty.set()
        return str(body["metadata"]["resourceVersion"])

    async def _watch(self, path: str, cache: dict[Key, dict[str, Any]], rv: str) -> None:
        params = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true",
                  "timeoutSeconds": "300"}
        timeout = httpx.Timeout(10.0, read=330.0)
        async with self.client.stream("GET", path, params=params, timeout=timeout) as resp:
            resp.raise_for_status()
            async for line in resp.aiter_lines():
                if not line:
                    continue
                event = json.loads(line)
                kind = event.get("type")
                if kind == "ERROR":
                    return  # e.g. 410 Gone: list again
                if kind == "BOOKMARK":
                    continue
                obj = event["object"]
                meta = obj["metadata"]
                key = (meta.get("namespace", ""), meta["name"])
                if kind == "DELETED":
                    cache.pop(key, None)
                else:
                    cache[key] = obj
                self._dirty.set()

    # ---- reconcile ----------------------------------------------------------------------

    async def _reconciler(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(0.05)   # coalesce a burst of events
            self._dirty.clear()
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                self._note(f"reconcile: {exc!r}")
                await asyncio.sleep(1.0)
                self._dirty.set()

    def ours(self) -> list[dict[str, Any]]:
        return [i for i in self.ingresses.values() if is_ours(i, self.ingress_class)]

    async def reconcile(self) -> None:
        """Program the proxy from the caches, then write every status that differs."""
        ours = self.ours()
        self.proxy.set_tables(build_tables(ours, self.services))
        self.reconciles += 1
        for ing in ours:
            if ing["metadata"].get("deletionTimestamp"):
                continue
            want = desired_status(ing, problems(ing, self.services),
                                  public_domain=self.public_domain,
                                  private_domain=self.private_domain, now=self.clock())
            if not same_status(ing.get("status"), want):
                await self._write_status(ing, want)

    async def _write_status(self, ing: Mapping[str, Any], status: dict[str, Any]) -> None:
        meta = ing["metadata"]
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{meta['namespace']}/ingresses/" \
               f"{meta['name']}/status"
        patch = {"metadata": {"resourceVersion": meta["resourceVersion"]},
                 "status": {**status,
                            # merge patch: drop the balancers when they should be gone
                            "publicLoadBalancer": status.get("publicLoadBalancer"),
                            "privateLoadBalancer": status.get("privateLoadBalancer")}}
        r = await self.client.patch(path, content=json.dumps(patch),
                                    headers={"Content-Type": "application/merge-patch+json"})
        if r.status_code in (404, 409):
            self._dirty.set()   # gone, or changed meanwhile: the watch brings the new one
            return
        r.raise_for_status()
        updated = r.json()
        self.ingresses[(meta["namespace"], meta["name"])] = updated
