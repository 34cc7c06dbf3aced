"""The node agent's image table (``fixtures/nodeagent/images.yaml``): container image ->
the local command it stands for. There is no container runtime or registry here, so an
image is "pulled" by finding it in the table; a missing one is kubelet's ``ErrImagePull``,
with a message naming the table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from harness.errors import UserError
from harness.files import data_path, data_root

ROOT = data_root()
TABLE = data_path("fixtures", "nodeagent", "images.yaml")


@dataclass(frozen=True)
class Image:
    name: str
    command: tuple[str, ...]
    cwd: Path
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


class ImageNotFound(LookupError):
    """The image is not in the table (the pod's ``ErrImagePull``)."""


def load_table(path: Path = TABLE) -> dict[str, Image]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read the node agent's image table: {exc}",
                        where=str(path)) from None
    images = {}
    for name, entry in (data.get("images") or {}).items():
        if not isinstance(entry, dict) or not entry.get("command"):
            raise UserError("each image needs a command", where=str(path), key=name)
        env = {str(k): str(v) for k, v in (entry.get("env") or {}).items()}
        for k, v in env.items():  # paths under the checkout, as the image would hold them
            if v.startswith("fixtures/"):
                env[k] = str(ROOT / v)
        images[name] = Image(name, tuple(str(c) for c in entry["command"]),
                             ROOT / entry.get("cwd", "."),
                             tuple(str(a) for a in entry.get("args") or ()), env)
    return images


def resolve(table: dict[str, Image], image: str, path: Path = TABLE) -> Image:
    """The table's entry for ``image``; :class:`ImageNotFound` with kubelet-like words."""
    entry = table.get(image)
    if entry is None:
        rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        raise ImageNotFound(
            f'Failed to pull image "{image}": the image is not in the node agent\'s image '
            f"table {rel} (known: {', '.join(sorted(table)) or 'none'})")
    return entry
