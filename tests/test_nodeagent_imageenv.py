"""The node agent's per-image Python environments (harness.nodeagent.imageenv) and the
image table's ``venv`` key: where an environment lives, that it is built once (and again
after an interrupted build), that a failed build says why and leaves nothing, and that the
image's ``python`` is that environment's interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.nodeagent import imageenv
from harness.nodeagent.images import Image, interpreter, load_table, needs_pull


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "harness" / "images"


def test_directory_depends_on_the_pins_and_names_the_image(tmp_path: Path, cache: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("six==1.17.0\n")
    first = imageenv.env_dir("kserve/storage-initializer:v0.20.0", req)
    assert first.parent == cache
    assert first.name.startswith("kserve-storage-initializer-v0.20.0-")
    req.write_text("six==1.16.0\n")
    assert imageenv.env_dir("kserve/storage-initializer:v0.20.0", req) != first


def test_built_once_then_reused_and_rebuilt_after_an_interrupted_build(
        tmp_path: Path, cache: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("# nothing beyond the standard library\n")
    image = Image("example/tool:1", ("python", "-c", "pass"), tmp_path, venv=req)
    assert needs_pull(image)
    lines: list[str] = []
    python = imageenv.ensure(image.name, req, progress=lines.append)
    assert any("building the Python environment of example/tool:1" in x for x in lines)
    assert not needs_pull(image)
    assert interpreter(image) == str(python)
    out = subprocess.run([str(python), "-c", "import sys; print(sys.prefix != sys.base_prefix)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
    marker = python.parent.parent / "marker"
    marker.write_text("x")
    assert imageenv.ensure(image.name, req) == python and marker.exists()   # reused

    (python.parent.parent / imageenv.STAMP).unlink()   # as if the build was cut short
    assert needs_pull(image)
    imageenv.ensure(image.name, req)
    assert not marker.exists() and not needs_pull(image)


def test_failed_build_says_why_and_leaves_nothing(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("--no-index\nharness-no-such-package==1.0\n")
    with pytest.raises(imageenv.ImageEnvError, match="harness-no-such-package"):
        imageenv.ensure("example/broken:1", req)
    assert not imageenv.env_dir("example/broken:1", req).exists()


def test_python_of_an_image_without_venv_is_the_harness_interpreter(tmp_path: Path) -> None:
    image = Image("example/plain:1", ("python",), tmp_path)
    assert interpreter(image) == sys.executable and not needs_pull(image)


def test_table_entry_venv_must_exist(tmp_path: Path) -> None:
    table = tmp_path / "images.yaml"
    table.write_text("images:\n  x/y:1:\n    command: [python]\n"
                     "    venv: fixtures/no-such/requirements.txt\n")
    with pytest.raises(UserError, match="fixtures/no-such/requirements.txt does not exist"):
        load_table(table)


def test_the_storage_initializer_entry_is_pinned() -> None:
    entry = load_table()["kserve/storage-initializer:v0.20.0"]
    assert entry.venv is not None
    pins = [line for line in entry.venv.read_text().splitlines()
            if line and not line.startswith("#")]
    assert "kserve-storage==0.20.0" in pins
    assert all("==" in p for p in pins), [p for p in pins if "==" not in p]
    assert (entry.cwd / entry.command[1]).is_file()
