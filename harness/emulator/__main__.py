"""``python -m harness.emulator``: serve the emulated API server in the foreground
(the child process of :class:`~harness.emulator.api.process.ChildEmulator`)."""

from __future__ import annotations

import argparse
import sys

from harness.emulator.api.process import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.emulator")
    parser.add_argument("--config", default=None, help="cluster file (default: the fixture)")
    parser.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig")
    parser.add_argument("--state-file", required=True, help="where to write pid and url")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    args = parser.parse_args(argv)
    return serve(cluster=args.config, kubeconfig=args.kubeconfig, state_file=args.state_file,
                 port=args.port)


if __name__ == "__main__":
    sys.exit(main())
