"""Fixtures shared by the controller tests: a local S3 (moto) holding the reference model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

MODEL = Path(__file__).resolve().parents[2] / "fixtures" / "modelserver" / "model" / "model.json"


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
