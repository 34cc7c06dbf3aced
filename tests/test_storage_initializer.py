"""KServe's storage initializer image as the node agent runs it: the image table's command
(``fixtures/storage-initializer/initializer-entrypoint``) in the image's own environment
(kserve-storage 0.20.0 from PyPI, :mod:`harness.nodeagent.imageenv`), with the arguments and
the S3 environment KServe's pod mutator gives it, against a local S3 (moto) and a local
HTTP server. The real ``kserve_storage`` code does the fetching.

The environment takes about 2 minutes to build the first time (``make images``; CI builds it
before ``make test``); without it these tests are skipped, unless ``HARNESS_BUILD_IMAGES=1``
asks them to build it.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.nodeagent import imageenv
from harness.nodeagent.images import Image, interpreter, load_table

IMAGE = "kserve/storage-initializer:v0.20.0"
MODEL = Path(__file__).resolve().parents[1] / "fixtures" / "modelserver" / "model" / "model.json"


@pytest.fixture(scope="module")
def image() -> Image:
    entry = load_table()[IMAGE]
    assert entry.venv is not None
    if not imageenv.is_built(entry.name, entry.venv) and \
            os.environ.get("HARNESS_BUILD_IMAGES") != "1":
        pytest.skip(f"{IMAGE}'s Python environment is not built: make images (about 2 min, "
                    "once), or HARNESS_BUILD_IMAGES=1")
    interpreter(entry)
    return entry


def run(image: Image, args: list[str], env: dict[str, str],
        tmp: Path) -> subprocess.CompletedProcess[str]:
    """The container as the node agent starts it: the entry's command with KServe's args."""
    argv = [interpreter(image), *image.command[1:], *args]
    full = {"PATH": os.environ["PATH"], "HOME": str(tmp), **image.env, **env}
    return subprocess.run(argv, cwd=image.cwd, env=full, capture_output=True, text=True,
                          timeout=120)


def s3_env(endpoint: str) -> dict[str, str]:
    """What KServe 0.20's credential builder injects for a Secret with the annotations
    ``serving.kserve.io/s3-endpoint: <host:port>``, ``s3-usehttps: "0"``,
    ``s3-verifyssl: "0"``, ``s3-region: us-east-1`` (pkg/credentials/s3)."""
    hostport = endpoint.removeprefix("http://")
    return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "S3_USE_HTTPS": "0", "S3_ENDPOINT": hostport, "AWS_ENDPOINT_URL": endpoint,
            "S3_VERIFY_SSL": "0", "AWS_DEFAULT_REGION": "us-east-1"}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class _Files(_Quiet):
    def guess_type(self, path: Any) -> str:
        return "application/octet-stream"


@pytest.fixture(scope="module")
def http_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Local HTTP servers with /linear/v1/model.json and model.tar.gz: one answering
    ``application/octet-stream`` (as object stores do), one with the content types a plain
    web server gives (Python's ``http.server``: ``application/json``, ``application/x-tar``)."""
    root = tmp_path_factory.mktemp("www")
    (root / "linear" / "v1").mkdir(parents=True)
    (root / "linear" / "v1" / "model.json").write_bytes(MODEL.read_bytes())
    with tarfile.open(root / "linear" / "v1" / "model.tar.gz", "w:gz") as tar:
        tar.add(MODEL, arcname="model.json")
    servers = []
    for handler in (_Files, _Quiet):
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), lambda *a, h=handler, **kw: h(*a, directory=str(root), **kw))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    try:
        yield tuple(f"http://127.0.0.1:{s.server_address[1]}" for s in servers)  # type: ignore[misc]
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


def test_fetches_s3_prefix_into_the_model_folder(image: Image, s3: str, tmp_path: Path) -> None:
    dest = tmp_path / "mnt" / "models"
    proc = run(image, ["s3://models/linear/v1", str(dest)], s3_env(s3), tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (dest / "model.json").read_bytes() == MODEL.read_bytes()
    assert sorted(p.name for p in dest.iterdir()) == ["model.json"]
    log = proc.stdout + proc.stderr
    assert "Initializing, args: (src_uri, dest_path): [('s3://models/linear/v1'" in log
    assert "Successfully copied s3://models/linear/v1" in log


def test_missing_s3_prefix_fails_the_init_container(image: Image, s3: str,
                                                    tmp_path: Path) -> None:
    proc = run(image, ["s3://models/linear/v9", str(tmp_path / "out")], s3_env(s3), tmp_path)
    assert proc.returncode == 1
    assert "Failed to fetch model. No model found in linear/v9." in proc.stdout + proc.stderr


def test_wrong_s3_endpoint_fails(image: Image, tmp_path: Path) -> None:
    env = s3_env("http://127.0.0.1:9")   # nothing listens on the discard port
    env.update(S3_MAX_ATTEMPTS="1", S3_CONNECT_TIMEOUT="2")
    proc = run(image, ["s3://models/linear/v1", str(tmp_path / "out")], env, tmp_path)
    assert proc.returncode == 1
    assert "127.0.0.1:9" in proc.stdout + proc.stderr
    assert not (tmp_path / "out" / "model.json").exists()


def test_fetches_http_file(image: Image, http_root: tuple[str, str], tmp_path: Path) -> None:
    octet, _ = http_root
    dest = tmp_path / "models"
    proc = run(image, [f"{octet}/linear/v1/model.json", str(dest)], {}, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (dest / "model.json").read_bytes() == MODEL.read_bytes()


def test_http_file_served_as_json_is_refused_as_upstream_does(
        image: Image, http_root: tuple[str, str], tmp_path: Path) -> None:
    """kserve_storage wants ``application/octet-stream`` for a file that is not an archive:
    a plain web server's ``application/json`` for model.json fails the init container."""
    _, json_server = http_root
    url = f"{json_server}/linear/v1/model.json"
    proc = run(image, [url, str(tmp_path / "models")], {}, tmp_path)
    assert proc.returncode == 1
    assert f"URI: {url} did not respond with 'Content-Type': 'application/octet-stream'" in \
        proc.stdout + proc.stderr


def test_http_archive_is_unpacked(image: Image, http_root: tuple[str, str],
                                  tmp_path: Path) -> None:
    _, web = http_root   # application/x-tar from a plain web server is what KServe wants
    dest = tmp_path / "models"
    proc = run(image, [f"{web}/linear/v1/model.tar.gz", str(dest)], {}, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["model.json"]
    assert (dest / "model.json").read_bytes() == MODEL.read_bytes()


def test_several_pairs_and_usage(image: Image, s3: str, http_root: tuple[str, str],
                                 tmp_path: Path) -> None:
    octet, _ = http_root
    a, b = tmp_path / "a", tmp_path / "b"
    proc = run(image, ["s3://models/linear/v1", str(a), f"{octet}/linear/v1/model.json",
                       str(b)], s3_env(s3), tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (a / "model.json").is_file() and (b / "model.json").is_file()
    bad = run(image, ["s3://models/linear/v1"], s3_env(s3), tmp_path)
    assert bad.returncode == 1
    assert bad.stdout.startswith("Usage: initializer-entrypoint src_uri_0 dest_path_0")


def test_runs_in_its_own_environment_not_the_harness(image: Image) -> None:
    python = interpreter(image)
    assert Path(python).parent.parent == imageenv.env_dir(image.name, image.venv or Path())
    probe = subprocess.run([python, "-c", "import kserve_storage, importlib.metadata as m;"
                            "print(m.version('kserve-storage'));"
                            "import importlib.util as u; print(u.find_spec('harness'))"],
                           capture_output=True, text=True, timeout=60, cwd=image.cwd)
    assert probe.stdout.split() == ["0.20.0", "None"], probe.stderr
