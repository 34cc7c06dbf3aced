"""Fixtures shared by every test folder: one in-process emulator per session (bookmarks
every 0.5 s) and a kubeconfig for it, and a local S3 (moto) holding the reference model.
The folders add their own clients and namespaces (``tests/emulator/conftest.py``,
``tests/kube/conftest.py``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.emulator import Emulator, ServerSettings

MODEL = Path(__file__).resolve().parents[1] / "fixtures" / "modelserver" / "model" / "model.json"

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with Emulator(settings=ServerSettings(bookmark_interval_s=0.5)) as emu:
        yield emu


@pytest.fixture(scope="session")
def kubeconfig(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return emulator.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 with ``s3://models/linear/v1/model.json``; its URL."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        url = f"http://127.0.0.1:{server._server.server_port}"  # noqa: SLF001
        client = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        client.create_bucket(Bucket="models")
        client.put_object(Bucket="models", Key="linear/v1/model.json", Body=MODEL.read_bytes())
        yield url
    finally:
        server.stop()
