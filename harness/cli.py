"""The ``harness`` command line: one subcommand per module in :mod:`harness.commands`.

Each command module defines ``configure(parser)`` (its options) and ``run(args) -> int``.
Modules are imported only when their command runs, so ``harness --help`` stays fast
and one command's heavy imports (Locust, the Kubernetes client) never slow another.
A :class:`~harness.errors.UserError` anywhere ends the run with its one-line message
on stderr and exit code 2; argparse's own usage errors also exit with 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from harness import __version__
from harness.errors import EXIT_USAGE, UserError

# name -> (module under harness.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "params": ("params", "effective value and source of every autoscaler knob"),
    "simulate": ("simulate", "run a scenario through the reference model of the KPA"),
    "conformance": ("conformance", "run the conformance job (make conformance)"),
    "cluster": ("cluster", "start or stop a cluster for the harness (--local: the built-in emulator)"),  # noqa: E501
    "report": ("report", "rebuild a run report from its raw data"),
    "load": ("load", "run a load profile against an inference endpoint with Locust"),
    "gc": ("gc", "delete what crashed runs left behind (by run label)"),
    "matrix": ("matrix", "the real mutation matrix on the upstream cluster (make upstream-matrix)"),  # noqa: E501
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Autoscaling conformance and load-testing harness for KServe on Knative.",
    )
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Parse the command name first, then let the command's module add its own options.
    head, _ = parser.parse_known_args(argv[:1] if argv and not argv[0].startswith("-") else argv)
    if not head.command:
        parser.print_help()
        return EXIT_USAGE
    module = importlib.import_module(f"harness.commands.{COMMANDS[head.command][0]}")
    cmd_parser = argparse.ArgumentParser(
        prog=f"harness {head.command}", description=COMMANDS[head.command][1]
    )
    module.configure(cmd_parser)
    args = cmd_parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except UserError as exc:
        print(f"harness {head.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"harness {head.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
