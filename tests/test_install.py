"""``pip install .`` into a fresh venv outside the checkout: the installed CLI finds its data.

The project's files are copied to a temporary folder (as a fresh clone would have them),
built offline (``--no-build-isolation``) and installed into a new venv whose only other
packages are this venv's, reached through a ``.pth`` line (so no download, and none of
the checkout on ``sys.path``). The commands then run with their working directory
outside the checkout.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from harness.files import DATA_DIRS

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("harness", "fixtures", "loadprofiles", "suites", "upstream", "pyproject.toml",
           "setup.py", "README.md")

WHERE = """
import json, harness
from harness.files import data_root
from harness.load.runner import LOCUSTFILE
from harness.emulator.controllers.kubelet import MODELSERVER_ROOT
from harness.suite.case import ISVC_DIR
from harness.commands.conformance import SUITES
from harness.prerequisites import RUNTIME_FILE
from harness.kpa.upstream import UPSTREAM_DIR
print(json.dumps({"package": harness.__file__, "data": str(data_root()),
                  "locustfile": str(LOCUSTFILE), "modelserver": str(MODELSERVER_ROOT),
                  "isvc": str(ISVC_DIR), "suites": str(SUITES), "runtime": str(RUNTIME_FILE),
                  "upstream": str(UPSTREAM_DIR / "go.mod")}))
"""


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{argv}: rc {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
def test_installed_package_finds_profiles_schemas_fixtures_and_load_files(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=60)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True, timeout=30).stdout.strip()
    # This venv's packages (pip, setuptools, the dependencies) after the new venv's own.
    (Path(purelib) / "dev-packages.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation",
          "--no-index", "--quiet", str(src)], work, env)

    where = json.loads(_run([str(python), "-c", WHERE], work, env).stdout)
    for name, path in where.items():
        assert Path(path).is_relative_to(venv), f"{name} is not the installed copy: {path}"
        assert Path(path).exists(), f"{name} is missing from the wheel: {path}"
    assert (Path(where["modelserver"]) / "modelserver" / "__main__.py").is_file()

    harness = str(venv / "bin" / "harness")
    params = _run([harness, "params", "--profile", "coreweave"], work, env)
    assert "tick-interval" in params.stdout
    simulated = _run([harness, "simulate", "--scenario", "burst", "--json"], work, env)
    rows = [json.loads(line) for line in simulated.stdout.splitlines()]
    assert len(rows) > 10 and max(r["ready"] for r in rows) >= 10


def test_setup_ships_every_data_folder() -> None:
    """``setup.py`` (which cannot import the harness at build time) names the same folders."""
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    shipped = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                   and [t.id for t in n.targets if isinstance(t, ast.Name)] == ["DATA_DIRS"])
    assert shipped == DATA_DIRS
    assert all((ROOT / d).is_dir() for d in DATA_DIRS)
