"""Steps of a bring-up and the one function that runs their commands.

A :class:`Step` is one command (argv, optional stdin) with a one-line title. :func:`execute`
prints ``[i/n] title`` and ``$ command`` for every step, runs it through the runner (by
default :func:`run_command`, a thin :func:`subprocess.run`), retries the steps marked
retryable, and stops at the first failure with one message naming the step, the
command and its exit code. With ``dry_run`` it only prints.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

EXIT_STEP_FAILED = 1


@dataclass(frozen=True, slots=True)
class Step:
    """One command of the bring-up."""

    title: str
    argv: tuple[str, ...]
    stdin: str | None = None
    retries: int = 0
    retry_delay_s: float = 10.0

    def shell(self) -> str:
        """The command as one shell line (a here-document when it reads stdin)."""
        line = shlex.join(self.argv)
        if self.stdin is not None:
            body = self.stdin if self.stdin.endswith("\n") else self.stdin + "\n"
            line += f" <<'EOF'\n{body}EOF"
        return line


@dataclass(frozen=True, slots=True)
class CommandResult:
    returncode: int
    stdout: str = ""


Runner = Callable[..., CommandResult]


def run_command(argv: Sequence[str], *, stdin: str | None = None,
                capture: bool = False) -> CommandResult:
    """Run one command, its output going to ours (or captured); never raises on exit codes."""
    sys.stdout.flush()
    try:
        proc = subprocess.run(list(argv), input=stdin, text=True, check=False,
                              stdout=subprocess.PIPE if capture else None)
    except FileNotFoundError:
        return CommandResult(127, "")
    except PermissionError:
        return CommandResult(126, "")
    return CommandResult(proc.returncode, proc.stdout or "")


class StepFailed(Exception):
    """A step's command exited non-zero (after its retries)."""

    def __init__(self, index: int, total: int, step: Step, returncode: int):
        self.index = index
        self.total = total
        self.step = step
        self.returncode = returncode
        super().__init__(
            f"step {index}/{total} failed ({step.title}): '{shlex.join(step.argv)}' "
            f"exited with code {returncode}"
        )


def execute(steps: Sequence[Step], *, dry_run: bool = False, runner: Runner = run_command,
            out: TextIO | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
    """Print and run the steps in order; raise :class:`StepFailed` at the first failure."""
    out = out or sys.stdout
    total = len(steps)
    for i, step in enumerate(steps, start=1):
        print(f"[{i}/{total}] {step.title}", file=out, flush=True)
        print(f"    $ {step.shell()}", file=out, flush=True)
        if dry_run:
            continue
        attempt = 0
        while True:
            result = runner(step.argv, stdin=step.stdin)
            if result.returncode == 0:
                break
            if attempt >= step.retries:
                raise StepFailed(i, total, step, result.returncode)
            attempt += 1
            print(f"    exit code {result.returncode}; retrying in {step.retry_delay_s:g} s "
                  f"({attempt}/{step.retries})", file=out, flush=True)
            sleep(step.retry_delay_s)
