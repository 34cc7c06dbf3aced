"""Our Knative Ingress implementation without a cluster: routes, splits, headers, probes,
timeouts and status (:mod:`harness.upstream.ingress`), checked against Knative's own
behaviour where we could run it, and the ingress conformance suite's cases
(knative.dev/networking test/conformance/ingress) ported where they need no cluster.

Backends are in-process aiohttp servers on 127.0.0.1 that echo what they received
(networking's runtime test image does the same) and answer ``K-Network-Probe: probe`` as
networking's ``probe.NewHandler`` does; the "Services" point at them, so the proxy's hop
is the one it makes in the cluster minus kube-proxy.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiohttp import web

from harness.upstream.ingress import routes
from harness.upstream.ingress.controller import IngressController
from harness.upstream.ingress.proxy import IngressProxy
from harness.upstream.ingress.routes import (
    CLASS_ANNOTATION,
    INGRESS_CLASS,
    build_tables,
    compute_hash,
    desired_status,
    expanded_hosts,
)

NS = "hx-ns"
HOST = "demo.hx-ns.example.com"

# Knative's ingress.ComputeHash (knative.dev/networking at serving v0.48.1's pin) of these
# two Ingresses, printed by a throwaway Go program that json-decodes the object into
# v1alpha1.Ingress and calls ingress.ComputeHash; ExpandedHosts of EXPAND_IN likewise.
KNATIVE_HASHES = {
    "b0a808157b19720802fa79e31f09c16cfb86851fc3ff25b7e4b531b743a72f76": {
        "apiVersion": "networking.internal.knative.dev/v1alpha1", "kind": "Ingress",
        "metadata": {"name": "demo", "namespace": NS},
        "spec": {"httpOption": "Enabled", "rules": [
            {"hosts": [HOST], "visibility": "ExternalIP", "http": {"paths": [
                {"headers": {"K-Canary": {"exact": "yes"}}, "appendHeaders": {"X-Path": "canary"},
                 "splits": [{"serviceName": "b", "serviceNamespace": NS, "servicePort": 80,
                             "percent": 100}]},
                {"path": "/", "appendHeaders": {"Z": "1", "A": "2"},
                 "splits": [{"serviceName": "a", "serviceNamespace": NS, "servicePort": 80,
                             "percent": 80,
                             "appendHeaders": {"Knative-Serving-Revision": "a"}},
                            {"serviceName": "b", "serviceNamespace": NS,
                             "servicePort": "http", "percent": 20}]}]}},
            {"hosts": ["demo.hx-ns.svc.cluster.local"], "visibility": "ClusterLocal",
             "http": {"paths": [{"splits": [{"serviceName": "a", "serviceNamespace": NS,
                                             "servicePort": 80, "percent": 100}],
                                 "rewriteHost": "x.example.com"}]}}]}},
    "93e43587ff6dcd15f8b4e4c6e9a25cccd4f62a2ad238b9fac4b59109eaa975d7": {
        "metadata": {"name": "n", "namespace": "ns"},
        "spec": {"rules": [{"hosts": ["h.example.com"], "http": {"paths": [
            {"splits": [{"serviceName": "s", "serviceNamespace": "ns",
                         "servicePort": 8080}]}]}}]}},
}
EXPAND_IN = ["a.b.svc.cluster.local", "foo.bar.example.com", "x.y", "x.y.svc", "1.2.3.4"]
EXPAND_OUT = ["a.b", "a.b.svc", "a.b.svc.cluster.local", "foo.bar.example.com", "x.y",
              "x.y.svc"]


# ---- pure logic ---------------------------------------------------------------------------


@pytest.mark.parametrize("want", sorted(KNATIVE_HASHES))
def test_hash_is_knatives_compute_hash(want: str) -> None:
    assert compute_hash(KNATIVE_HASHES[want]) == want


def test_hash_changes_with_the_spec_and_the_name() -> None:
    first = "b0a808157b19720802fa79e31f09c16cfb86851fc3ff25b7e4b531b743a72f76"
    ing = json.loads(json.dumps(KNATIVE_HASHES[first]))
    base = compute_hash(ing)
    ing["spec"]["rules"][0]["http"]["paths"][1]["splits"][0]["percent"] = 79
    assert compute_hash(ing) != base
    ing2 = json.loads(json.dumps(KNATIVE_HASHES[first]))
    ing2["metadata"]["name"] = "other"
    assert compute_hash(ing2) != base


def test_expanded_hosts_are_knatives() -> None:
    assert sorted(expanded_hosts(EXPAND_IN)) == EXPAND_OUT


def service(name: str, ip: str = "127.0.0.1", port: int = 80, *, target: int = 0,
            ns: str = NS, named: str = "http") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": ip, "ports": [{"name": named, "port": port,
                                                 "targetPort": target or port}]}}


def ingress(rules: list[dict[str, Any]], *, name: str = "demo", generation: int = 1,
            cls: str = INGRESS_CLASS, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "networking.internal.knative.dev/v1alpha1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": NS, "generation": generation,
                         "resourceVersion": "7", "uid": f"uid-{name}",
                         "creationTimestamp": "2026-01-01T00:00:00Z",
                         "annotations": {CLASS_ANNOTATION: cls}},
            "spec": {"rules": rules}, "status": status or {}}


def rule(hosts: list[str], paths: list[dict[str, Any]],
         visibility: str = "ExternalIP") -> dict[str, Any]:
    return {"hosts": hosts, "visibility": visibility, "http": {"paths": paths}}


def split(svc: str, percent: int | None = None, port: int | str = "http",
          **append: str) -> dict[str, Any]:
    out: dict[str, Any] = {"serviceName": svc, "serviceNamespace": NS, "servicePort": port}
    if percent is not None:
        out["percent"] = percent
    if append:
        out["appendHeaders"] = append
    return out


def test_tables_visibility_probe_paths_and_resolution() -> None:
    ing = ingress([rule([HOST], [{"splits": [split("a", 100)]}]),
                   rule(["demo.hx-ns.svc.cluster.local"], [{"splits": [split("b", 100, "http")]}],
                        "ClusterLocal")])
    services = {(NS, "a"): service("a", "198.19.0.20", 80),
                (NS, "b"): service("b", "198.19.0.21", 8080)}
    tables = build_tables([ing], services)
    assert HOST in tables["public"].hosts and HOST in tables["private"].hosts
    local = {"demo.hx-ns", "demo.hx-ns.svc", "demo.hx-ns.svc.cluster.local"}
    assert local <= set(tables["private"].hosts)
    assert not local & set(tables["public"].hosts), "ClusterLocal hosts leak to public"
    probe, plain = tables["public"].hosts[HOST]
    assert probe.headers == (("k-network-hash", "override"),)
    assert dict(probe.append_headers) == {"K-Network-Hash": compute_hash(ing)}
    assert plain.splits[0].address == ("198.19.0.20", 80)
    # a named servicePort is looked up among the Service's ports
    assert tables["private"].hosts["demo.hx-ns"][1].splits[0].address == ("198.19.0.21", 8080)
    assert routes.problems(ing, services) == []
    missing = routes.problems(ing, {(NS, "a"): services[(NS, "a")]})
    assert missing == [f"Service {NS}/b not found"]


def test_first_matching_path_wins_with_prefix_and_exact_headers() -> None:
    ing = ingress([rule([HOST], [
        {"path": "/v2", "headers": {"K-Canary": {"exact": "yes"}}, "splits": [split("c")]},
        {"path": "/v2", "splits": [split("b")]},
        {"splits": [split("a")]}])])
    svcs = {(NS, n): service(n) for n in "abc"}
    table = build_tables([ing], svcs)["public"]

    def which(path: str, **headers: str) -> str:
        found = table.lookup(HOST, path, {k.lower(): v for k, v in headers.items()})
        assert found is not None
        return found.splits[0].service

    assert which("/v2/models", **{"K-Canary": "yes"}) == "c"
    assert which("/v2/models", **{"K-Canary": "no"}) == "b"
    assert which("/v2") == "b"
    assert which("/v1/models") == "a"
    assert table.lookup("other.example.com", "/", {}) is None


def test_ingresses_of_another_class_are_not_ours() -> None:
    assert routes.is_ours(ingress([], cls=INGRESS_CLASS))
    assert not routes.is_ours(ingress([], cls="kourier.ingress.networking.knative.dev"))
    bare = ingress([])
    del bare["metadata"]["annotations"]
    assert not routes.is_ours(bare)


def test_status_as_knative_marks_it() -> None:
    ing = ingress([rule([HOST], [{"splits": [split("a")]}])], generation=3)
    st = desired_status(ing, [], public_domain="pub.svc", private_domain="priv.svc",
                        now="2026-01-01T00:00:01Z")
    assert st["observedGeneration"] == 3
    assert [(c["type"], c["status"]) for c in st["conditions"]] == [
        ("LoadBalancerReady", "True"), ("NetworkConfigured", "True"), ("Ready", "True")]
    assert st["publicLoadBalancer"] == {"ingress": [{"domainInternal": "pub.svc"}]}
    assert st["privateLoadBalancer"] == {"ingress": [{"domainInternal": "priv.svc"}]}
    # a condition keeps its transition time while its status holds
    ing["status"] = st
    again = desired_status(ing, [], public_domain="pub.svc", private_domain="priv.svc",
                           now="2026-01-01T00:09:00Z")
    assert routes.same_status(st, again)
    assert routes.same_status({**st, "annotations": {"other": "writer"}}, again)
    assert not routes.same_status({**st, "observedGeneration": 2}, again)
    assert again["conditions"][0]["lastTransitionTime"] == "2026-01-01T00:00:01Z"
    waiting = desired_status(ing, ["Service hx-ns/a not found"], public_domain="pub.svc",
                             private_domain="priv.svc", now="2026-01-01T00:09:00Z")
    ready = {c["type"]: c for c in waiting["conditions"]}
    assert ready["Ready"]["status"] == "Unknown"
    assert ready["LoadBalancerReady"]["reason"] == "Uninitialized"
    assert "hx-ns/a not found" in ready["Ready"]["message"]
    assert "publicLoadBalancer" not in waiting
    assert ready["Ready"]["lastTransitionTime"] == "2026-01-01T00:09:00Z"


# ---- the proxy on real sockets -------------------------------------------------------------


class Backend:
    """Echoes method, path and headers; ``?delay=`` (s) before the head, ``?stall=`` (s)
    between two body parts; answers Knative probes as networking's probe.NewHandler."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = 0
        self.seen: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("K-Network-Probe") == "probe":
            hh = request.headers.get("K-Network-Hash", "")
            if not hh:
                return web.Response(status=400, text="a probe request must contain a "
                                    'non-empty "K-Network-Hash" header')
            return web.Response(status=200, headers={"K-Network-Hash": hh})
        info = {"backend": self.name, "method": request.method, "path": request.path,
                "headers": {k: v for k, v in request.headers.items()},
                "host": request.headers.get("Host", "")}
        self.seen.append(info)
        if "status" in request.query:
            return web.Response(status=int(request.query["status"]), text="as asked")
        await asyncio.sleep(float(request.query.get("delay", 0)))
        stall = float(request.query.get("stall", 0))
        if stall:
            resp = web.StreamResponse(headers={"X-Backend": self.name})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            await resp.write(b"first,")
            await asyncio.sleep(stall)
            await resp.write(b"second")
            await resp.write_eof()
            return resp
        return web.json_response(info, headers={"X-Backend": self.name})

    async def start(self) -> Backend:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


Env = dict[str, Any]


def run(body: Callable[[Env], Awaitable[None]], *, backends: tuple[str, ...] = ("a", "b"),
        read_timeout: float | None = 30.0, timeout: float = 60.0) -> None:
    """Backends, a proxy on 127.0.0.1 with public and private listeners, an HTTP client;
    ``body(env)`` programs and drives them; everything stops at the end."""
    async def main() -> None:
        started = [await Backend(n).start() for n in backends]
        proxy = await IngressProxy({"public": [("127.0.0.1", 0)],
                                    "private": [("127.0.0.1", 0)]},
                                   read_timeout=read_timeout).start()
        env: Env = {"proxy": proxy, "backends": {b.name: b for b in started},
                    "services": {(NS, b.name): service(b.name, "127.0.0.1", b.port)
                                 for b in started},
                    "public": f"http://127.0.0.1:{proxy.ports['public'][0]}",
                    "private": f"http://127.0.0.1:{proxy.ports['private'][0]}"}
        try:
            async with httpx.AsyncClient(timeout=20.0) as client:
                env["client"] = client
                await asyncio.wait_for(body(env), timeout)
        finally:
            await proxy.stop()
            for b in started:
                await b.stop()

    asyncio.run(main())


def program(env: Env, *ingresses: dict[str, Any]) -> None:
    env["proxy"].set_tables(build_tables(list(ingresses), env["services"]))


def test_split_80_20_by_host_exactly_per_hundred_and_headers_per_split() -> None:
    async def body(env: Env) -> None:
        program(env, ingress([rule([HOST], [{
            "appendHeaders": {"X-Path": "main", "X-Over": "path"},
            "splits": [split("a", 80, **{"Knative-Serving-Revision": "a", "X-Over": "split"}),
                       split("b", 20, **{"Knative-Serving-Revision": "b"})]}])]))
        seen: Counter[str] = Counter()
        for _ in range(100):
            r = await env["client"].get(env["public"] + "/v1/models", headers={"Host": HOST})
            assert r.status_code == 200, r.text
            info = r.json()
            seen[info["backend"]] += 1
            assert info["headers"]["Knative-Serving-Revision"] == info["backend"]
            assert info["headers"]["X-Path"] == "main"
            # the split's value replaces the path's (both are "set", split applied last)
            assert info["headers"]["X-Over"] == ("split" if info["backend"] == "a" else "path")
            assert info["host"] == HOST
        assert seen == {"a": 80, "b": 20}
        r = await env["client"].get(env["public"] + "/", headers={"Host": "nope.example.com"})
        assert r.status_code == 404 and "no route" in r.text

    run(body)


def test_header_matched_path_and_appended_header_overrides_the_clients() -> None:
    async def body(env: Env) -> None:
        program(env, ingress([rule([HOST], [
            {"headers": {"Knative-Serving-Tag": {"exact": "canary"}},
             "appendHeaders": {"Which-Backend": "tag"}, "splits": [split("b")]},
            {"appendHeaders": {"Which-Backend": "no-tag"}, "splits": [split("a")]}])]))
        c, url = env["client"], env["public"]
        for tag, want, backend in ((None, "no-tag", "a"), ("canary", "tag", "b"),
                                   ("", "no-tag", "a"), ("not-canary", "no-tag", "a")):
            headers = {"Host": HOST, "Which-Backend": "client"}
            if tag is not None:
                headers["Knative-Serving-Tag"] = tag
            info = (await c.get(url + "/", headers=headers)).json()
            assert (info["backend"], info["headers"]["Which-Backend"]) == (backend, want), tag

    run(body)


def test_probe_headers_as_the_conformance_suite_checks() -> None:
    """headers/probe: a K-Network-Probe request with K-Network-Hash: override comes back
    200 with the Ingress's hash; with any other hash, with that one."""
    async def body(env: Env) -> None:
        ing = ingress([rule([HOST], [{"splits": [split("a")]}])])
        program(env, ing)
        c, url = env["client"], env["public"]
        r = await c.get(url + "/", headers={"Host": HOST, "K-Network-Probe": "probe",
                                            "K-Network-Hash": "override"})
        assert (r.status_code, r.headers.get("K-Network-Hash")) == (200, compute_hash(ing))
        mine = "2701a1b241db6af811992c57a5e11171847148ac3d2e1a8cc992a62f9e4fa111"
        r = await c.get(url + "/", headers={"Host": HOST, "K-Network-Probe": "probe",
                                            "K-Network-Hash": mine})
        assert (r.status_code, r.headers.get("K-Network-Hash")) == (200, mine)
        # no probe: a plain request reaches the backend without the Ingress's hash
        info = (await c.get(url + "/", headers={"Host": HOST})).json()
        assert "K-Network-Hash" not in info["headers"]

    run(body)


def test_cluster_local_only_on_the_private_listener_and_rewrite_host() -> None:
    async def body(env: Env) -> None:
        program(env, ingress([
            rule(["demo.hx-ns.svc.cluster.local"], [{"splits": [split("a")]}], "ClusterLocal"),
            rule([HOST], [{"rewriteHost": "rewritten.example.com",
                           "splits": [split("b")]}])]))
        c = env["client"]
        r = await c.get(env["public"] + "/", headers={"Host": "demo.hx-ns.svc.cluster.local"})
        assert r.status_code == 404
        for host in ("demo.hx-ns.svc.cluster.local", "demo.hx-ns.svc", "demo.hx-ns:80"):
            r = await c.get(env["private"] + "/", headers={"Host": host})
            assert (r.status_code, r.json()["backend"]) == (200, "a"), host
        for url in (env["public"], env["private"]):   # ExternalIP: both listeners
            info = (await c.get(url + "/", headers={"Host": HOST})).json()
            assert (info["backend"], info["host"]) == ("b", "rewritten.example.com")

    run(body)


def test_timeouts_long_waits_pass_a_silent_backend_is_cut() -> None:
    """timeout: a backend silent for a while before its head or between its bytes is
    answered (Knative's suite waits 10 s; here 1.5 s under a 3 s read timeout), one silent
    for longer than the read timeout gets 504."""
    async def body(env: Env) -> None:
        program(env, ingress([rule([HOST], [{"splits": [split("a")]}])]))
        c, url = env["client"], env["public"]
        h = {"Host": HOST}
        assert (await c.get(url + "/?delay=1.5", headers=h)).status_code == 200
        r = await c.get(url + "/?stall=1.5", headers=h)
        assert (r.status_code, r.text) == (200, "first,second")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        r = await c.get(url + "/?delay=6", headers=h)
        assert r.status_code == 504 and "upstream request timeout" in r.text
        assert 2.5 < loop.time() - t0 < 5.5

    run(body, read_timeout=3.0, backends=("a",))


def test_no_retry_of_an_answer_multiple_hosts_and_updates() -> None:
    """retry: a backend's 503 is the client's (once sent, nothing is retried);
    hosts/multiple: every host of a rule routes; update: new routes take over at once."""
    async def body(env: Env) -> None:
        c, url = env["client"], env["public"]
        hosts = [HOST, "second.example.com", "third.example.com"]
        program(env, ingress([rule(hosts, [{"splits": [split("a")]}])]))
        r = await c.get(url + "/?status=503", headers={"Host": HOST})
        assert (r.status_code, r.text) == (503, "as asked")
        assert len(env["backends"]["a"].seen) == 1
        for host in hosts:
            assert (await c.get(url + "/", headers={"Host": host})).json()["backend"] == "a"
        program(env, ingress([rule(hosts[:1], [{"splits": [split("b")]}])]))
        assert (await c.get(url + "/", headers={"Host": HOST})).json()["backend"] == "b"
        assert (await c.get(url + "/", headers={"Host": hosts[1]})).status_code == 404

    run(body)


def test_unresolved_and_unreachable_backends_are_named() -> None:
    async def body(env: Env) -> None:
        env["services"][(NS, "dead")] = service("dead", "127.0.0.1", 1)   # nothing listens
        program(env, ingress([rule([HOST], [{"splits": [split("missing")]}]),
                              rule(["dead.example.com"], [{"splits": [split("dead")]}])]))
        c = env["client"]
        r = await c.get(env["public"] + "/", headers={"Host": HOST})
        assert r.status_code == 503 and f"Service {NS}/missing not found" in r.text
        r = await c.get(env["public"] + "/", headers={"Host": "dead.example.com"})
        assert r.status_code == 502 and f"Service {NS}/dead" in r.text

    run(body, backends=())


# ---- the controller: watch, program, status -----------------------------------------------


class FakeApi:
    """Just enough of the API server for the controller: lists, watches that end at once,
    status merge patches recorded (and applied)."""

    def __init__(self, ingresses: list[dict[str, Any]], services: list[dict[str, Any]]):
        self.ingresses = {i["metadata"]["name"]: i for i in ingresses}
        self.services = services
        self.patches: list[dict[str, Any]] = []

    @staticmethod
    async def _quiet() -> Any:
        """A watch stream with no events (until cancelled)."""
        await asyncio.sleep(3600)
        yield b""

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "PATCH" and path.endswith("/status"):
            name = path.split("/")[-2]
            body = json.loads(request.content)
            self.patches.append(body)
            obj = self.ingresses[name]
            obj["status"] = {k: v for k, v in body["status"].items() if v is not None}
            return httpx.Response(200, json=obj)
        if request.url.params.get("watch"):
            return httpx.Response(200, content=self._quiet())
        if path.endswith("/ingresses"):
            return httpx.Response(200, json={"metadata": {"resourceVersion": "5"},
                                             "items": list(self.ingresses.values())})
        if path.endswith("/services"):
            return httpx.Response(200, json={"metadata": {"resourceVersion": "5"},
                                             "items": self.services})
        return httpx.Response(404, json={})


def test_controller_programs_ours_and_writes_knatives_status() -> None:
    mine = ingress([rule([HOST], [{"splits": [split("a")]}])], generation=2)
    other = ingress([rule(["other.example.com"], [{"splits": [split("a")]}])], name="kourier",
                    cls="kourier.ingress.networking.knative.dev")
    api = FakeApi([mine, other], [service("a", "198.19.0.20")])

    async def main() -> None:
        proxy = IngressProxy({})
        client = httpx.AsyncClient(transport=httpx.MockTransport(api.handler),
                                   base_url="https://api")
        ctl = IngressController(client, proxy, public_domain="pub", private_domain="priv",
                                clock=lambda: "2026-01-01T00:00:00Z")
        await ctl.start()
        try:
            for _ in range(100):
                if api.patches and ctl.reconciles >= 1:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)   # further reconciles write nothing new
        finally:
            await ctl.stop()
            await client.aclose()
        tables = proxy.tables()
        assert HOST in tables["public"].hosts
        assert "other.example.com" not in tables["public"].hosts, "another class's Ingress"
        assert len(api.patches) == 1, api.patches
        status = api.ingresses["demo"]["status"]
        assert status["observedGeneration"] == 2
        assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
        assert status["privateLoadBalancer"]["ingress"][0]["domainInternal"] == "priv"
        assert api.patches[0]["metadata"]["resourceVersion"] == "7"
        assert "status" not in api.ingresses["kourier"] or not api.ingresses["kourier"]["status"]

    asyncio.run(asyncio.wait_for(main(), 30))
