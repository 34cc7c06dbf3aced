"""The node agent's image table (``fixtures/nodeagent/images.yaml``): container image ->
the local command it stands for. There is no container runtime or registry here, so an
image is "pulled" by finding it in the table; a missing one is kubelet's ``ErrImagePull``,
with a message naming the table.

An entry either names a command relative to the checkout, or (``upstream: <binary>``) a
binary of the upstream build (``make upstream``; its folder is given to :func:`load_table`
by whoever runs the node agent), looked for when a pod starts; a binary not built yet is
the pod's ``ErrImagePull`` too. Such an entry's ``entrypoint`` is the binary's path inside
the real image (ko's ``/ko-app/<name>``, KServe's ``/manager``): a container ``command``
naming it runs the built binary, as the image would.

An entry with ``venv`` (a pinned requirements file) is a Python program with its own
environment (:mod:`harness.nodeagent.imageenv`, built on first use: the image's slow
"pull"): its ``python`` is that environment's interpreter; any other ``python`` is the
harness's.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from harness.errors import UserError
from harness.files import data_path, data_root
from harness.nodeagent import imageenv

ROOT = data_root()
TABLE = data_path("fixtures", "nodeagent", "images.yaml")


@dataclass(frozen=True)
class Image:
    name: str
    command: tuple[str, ...]
    cwd: Path
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    upstream: str = ""     # a binary of the upstream build (its path is ``command[0]``)
    entrypoint: str = ""   # that binary's path inside the real image
    venv: Path | None = None   # the pinned requirements of the image's own environment

    def argv(self, command: list[str] | None, args: list[str] | None) -> list[str]:
        """The process a container runs: its ``command``/``args`` in place of the image's
        ENTRYPOINT/CMD (``args`` alone keep the ENTRYPOINT), the image's own path of an
        upstream binary standing for the built one."""
        argv = [*(command or self.command), *(args or ([] if command else self.args))]
        if self.upstream and argv and argv[0] == self.entrypoint:
            argv[0] = self.command[0]
        return argv


class ImageNotFound(LookupError):
    """The image is not in the table (the pod's ``ErrImagePull``)."""


def load_table(path: Path = TABLE, *, upstream_bin: Path | None = None) -> dict[str, Image]:
    """The table; ``upstream_bin`` is the upstream build's folder (``None``: not given, and
    the images of upstream binaries fail to pull)."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read the node agent's image table: {exc}",
                        where=str(path)) from None
    images = {}
    for name, entry in (data.get("images") or {}).items():
        if not isinstance(entry, dict) or bool(entry.get("command")) == bool(
                entry.get("upstream")):
            raise UserError("each image needs a command or an upstream binary (not both)",
                            where=str(path), key=name)
        if entry.get("upstream") and not str(entry.get("entrypoint", "")).startswith("/"):
            raise UserError("an upstream binary needs its entrypoint (absolute path in the "
                            "image)", where=str(path), key=name)
        env = {str(k): str(v) for k, v in (entry.get("env") or {}).items()}
        for k, v in env.items():  # paths under the checkout, as the image would hold them
            if v.startswith("fixtures/"):
                env[k] = str(ROOT / v)
        upstream, entrypoint = str(entry.get("upstream") or ""), str(entry.get("entrypoint", ""))
        command = tuple(str(c) for c in entry["command"]) if not upstream else (
            () if upstream_bin is None else (str(upstream_bin / upstream),))
        venv = ROOT / entry["venv"] if entry.get("venv") else None
        if venv is not None and not venv.is_file():
            raise UserError(f"the image's venv requirements file {entry['venv']} does not "
                            "exist", where=str(path), key=name)
        images[name] = Image(name, command, ROOT / entry.get("cwd", "."),
                             tuple(str(a) for a in entry.get("args") or ()), env,
                             upstream, entrypoint, venv)
    return images


def resolve(table: dict[str, Image], image: str, path: Path = TABLE) -> Image:
    """The table's entry for ``image``; :class:`ImageNotFound` with kubelet-like words."""
    entry = table.get(image)
    if entry is None:
        rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        raise ImageNotFound(
            f'Failed to pull image "{image}": the image is not in the node agent\'s image '
            f"table {rel} (known: {', '.join(sorted(table)) or 'none'})")
    if not entry.upstream:
        return entry
    if not entry.command:
        raise ImageNotFound(f'Failed to pull image "{image}": its upstream binary '
                            f"{entry.upstream} cannot be found: this node agent was given "
                            "no upstream build folder")
    if not Path(entry.command[0]).is_file():
        raise ImageNotFound(
            f'Failed to pull image "{image}": its upstream binary {entry.upstream} is not '
            f"built ({entry.command[0]} is missing); build it with 'make upstream'")
    return entry


def needs_pull(image: Image) -> bool:
    """Whether starting ``image`` first builds its environment (a slow "pull")."""
    return image.venv is not None and not imageenv.is_built(image.name, image.venv)


def interpreter(image: Image, progress: Callable[[str], None] | None = None) -> str:
    """What ``python`` in the image's command runs: its own environment's interpreter
    (built first when missing), else the one running the harness."""
    if image.venv is None:
        return sys.executable
    return str(imageenv.ensure(image.name, image.venv, progress=progress))


def build_all(table: dict[str, Image] | None = None) -> int:
    """Build every image environment the table names (``make images``)."""
    for image in (table or load_table()).values():
        if image.venv is None:
            continue
        built = imageenv.is_built(image.name, image.venv)
        python = interpreter(image, progress=lambda line: print(line, flush=True))
        print(f"{image.name}: {Path(python).parent.parent}"
              f"{' (already built)' if built else ''}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(build_all())
