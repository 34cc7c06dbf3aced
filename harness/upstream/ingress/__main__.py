"""The ingress process: ``python -m harness.upstream.ingress --kubeconfig K --public
127.0.0.1:P --private 127.0.0.1:Q [--public 198.18.0.1:P ...]``; prints one ``listening``
line when its listeners are up; stops on SIGTERM/SIGINT. ``harness cluster up --upstream``
supervises it (:mod:`harness.upstream.control_plane`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from harness.upstream.ingress.controller import IngressController, client_from_kubeconfig
from harness.upstream.ingress.objects import PRIVATE_SERVICE, PUBLIC_SERVICE, domain
from harness.upstream.ingress.proxy import DEFAULT_READ_TIMEOUT_S, IngressProxy
from harness.upstream.ingress.routes import INGRESS_CLASS


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m harness.upstream.ingress",
                                description="Our Knative Ingress implementation")
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--public", type=_address, action="append", default=[],
                   help="HOST:PORT of the public listener (ExternalIP rules); repeatable")
    p.add_argument("--private", type=_address, action="append", default=[],
                   help="HOST:PORT of the private listener (every rule); repeatable")
    p.add_argument("--ingress-class", default=INGRESS_CLASS)
    p.add_argument("--read-timeout", type=float, default=DEFAULT_READ_TIMEOUT_S,
                   help="seconds a backend may send nothing before 504 (0: no limit)")
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    proxy = IngressProxy({"public": args.public, "private": args.private},
                         read_timeout=args.read_timeout or None)
    await proxy.start()
    client = client_from_kubeconfig(args.kubeconfig)
    controller = IngressController(client, proxy, public_domain=domain(PUBLIC_SERVICE),
                                   private_domain=domain(PRIVATE_SERVICE),
                                   ingress_class=args.ingress_class)
    await controller.start()
    print(f"harness ingress: class {args.ingress_class}, listening public "
          f"{args.public} private {args.private}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await controller.stop()
        await proxy.stop()
        await client.aclose()
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return asyncio.run(run(parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
