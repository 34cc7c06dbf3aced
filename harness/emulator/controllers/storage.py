"""The storage initializer: fetch a model from its ``storageUri`` into a pod's model folder.

Supported, as KServe's storage initializer does for these schemes:

- ``s3://bucket/prefix``: every object under the prefix (an S3 endpoint such as moto's
  server mode, given by ``s3_endpoint`` or ``AWS_ENDPOINT_URL``), via boto3.
- ``http://`` / ``https://``: one file, saved under its base name, with kserve_storage's
  Content-Type rules (``application/octet-stream``, or an archive type for a ``.tar``,
  ``.tar.gz`` or ``.zip``, which is unpacked), via httpx.
- ``pvc://claim/path``: a folder (or file) of ``pvc_root/claim/path`` standing for the
  mounted PersistentVolumeClaim, copied. The kubelet does not fetch it: KServe mounts the
  claim, so :func:`pvc_path` names the folder it reads in place.

Every fetch is bounded in time; errors raise :class:`StorageError` with the URI named.
"""

from __future__ import annotations

import gzip
import mimetypes
import os
import shutil
import tarfile
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import httpx

_TIMEOUT_S = 30.0
_MAX_OBJECTS = 1000


class StorageError(RuntimeError):
    """The model could not be fetched."""


def fetch(uri: str, dest: str | Path, *, s3_endpoint: str | None = None,
          pvc_root: str | Path | None = None) -> list[Path]:
    """Download ``uri`` into the folder ``dest``; returns the files written."""
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    parsed = urlparse(uri)
    try:
        if parsed.scheme == "s3":
            return _fetch_s3(parsed.netloc, parsed.path.lstrip("/"), out, s3_endpoint)
        if parsed.scheme in ("http", "https"):
            return _fetch_http(uri, out)
        if parsed.scheme == "pvc":
            return _fetch_pvc(parsed.netloc, parsed.path.lstrip("/"), out, pvc_root)
    except StorageError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported with the URI
        raise StorageError(f"cannot fetch {uri}: {exc}") from exc
    raise StorageError(f"unsupported storageUri scheme in {uri!r} (s3, http, https, pvc)")


def _fetch_s3(bucket: str, prefix: str, out: Path, endpoint: str | None) -> list[Path]:
    import boto3
    from botocore.config import Config

    endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL") or os.environ.get(
        "S3_ENDPOINT")
    if not endpoint:
        raise StorageError(f"s3://{bucket}/{prefix}: no S3 endpoint configured")
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name=os.environ.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        config=Config(connect_timeout=5, read_timeout=_TIMEOUT_S, retries={"max_attempts": 2}))
    listing = client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=_MAX_OBJECTS)
    written: list[Path] = []
    for item in listing.get("Contents") or []:
        key = item["Key"]
        rel = key[len(prefix):].lstrip("/") if prefix and key != prefix else Path(key).name
        target = out / (rel or Path(key).name)
        target.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(bucket, key, str(target))
        written.append(target)
    if not written:
        raise StorageError(f"s3://{bucket}/{prefix}: no objects found")
    return written


ZIP_TYPES = ("application/x-zip-compressed", "application/zip", "application/zip-compressed")
TAR_TYPES = ("application/x-tar", "application/x-gtar", "application/x-gzip", "application/gzip")


def _fetch_http(uri: str, out: Path) -> list[Path]:
    """As ``kserve_storage``'s ``_download_from_uri`` (KServe 0.20): the URL must name a
    file; an archive (``.tar``, ``.tar.gz``/``.tgz``, ``.zip`` by its name) must come with
    an archive Content-Type and is unpacked; anything else must be served as
    ``application/octet-stream`` (a web server's ``application/json`` for ``model.json``
    fails the pod, with kserve_storage's words)."""
    url = urlparse(uri)
    name = os.path.basename(url.path)
    if mimetypes.guess_type(url.path)[0] is None and url.query:
        mimetype, encoding = mimetypes.guess_type(url.query)
    else:
        mimetype, encoding = mimetypes.guess_type(url.path)
    if not name:
        raise StorageError(f"No filename contained in URI: {uri}")
    with httpx.Client(timeout=_TIMEOUT_S, follow_redirects=True) as client:
        resp = client.get(uri)
    if resp.status_code != 200:
        raise StorageError(f"{uri}: HTTP {resp.status_code}")
    ctype = resp.headers.get("Content-Type", "")
    if mimetype == "application/zip" and not ctype.startswith(ZIP_TYPES):
        raise StorageError(f"URI: {uri} did not respond with any of following "
                           f"'Content-Type': {', '.join(ZIP_TYPES)}")
    if mimetype == "application/x-tar" and not ctype.startswith(TAR_TYPES):
        raise StorageError(f"URI: {uri} did not respond with any of following "
                           f"'Content-Type': {', '.join(TAR_TYPES)}")
    if mimetype not in ("application/zip", "application/x-tar") and \
            not ctype.startswith("application/octet-stream"):
        raise StorageError(f"URI: {uri} did not respond with 'Content-Type': "
                           f"'application/octet-stream'")
    body = gzip.decompress(resp.content) if encoding == "gzip" else resp.content
    target = out / (f"{name}.tar" if encoding == "gzip" else name)
    target.write_bytes(body)
    if mimetype not in ("application/x-tar", "application/zip"):
        return [target]
    try:
        if mimetype == "application/x-tar":
            with tarfile.open(target, "r") as archive:
                archive.extractall(out, filter="data")
        else:
            with zipfile.ZipFile(target) as archive:
                archive.extractall(out)
    except (tarfile.TarError, zipfile.BadZipFile) as exc:
        raise StorageError("Failed to unpack archive file. The file format is not valid.") \
            from exc
    target.unlink()
    return sorted(p for p in out.rglob("*") if p.is_file())


def pvc_path(uri: str, root: str | Path | None) -> Path:
    """The folder a ``pvc://claim/path`` URI mounts (``root/claim/path``), as KServe mounts
    the claim with ``subPath: path`` instead of copying it."""
    parsed = urlparse(uri)
    claim, path = parsed.netloc, parsed.path.lstrip("/")
    if root is None:
        raise StorageError(f"pvc://{claim}/{path}: no PVC root folder configured")
    src = Path(root) / claim / path
    if not src.exists():
        raise StorageError(f"pvc://{claim}/{path}: {src} does not exist")
    return src


def _fetch_pvc(claim: str, path: str, out: Path, root: str | Path | None) -> list[Path]:
    if root is None:
        raise StorageError(f"pvc://{claim}/{path}: no PVC root folder configured")
    src = Path(root) / claim / path
    if not src.exists():
        raise StorageError(f"pvc://{claim}/{path}: {src} does not exist")
    if src.is_file():
        target = out / src.name
        shutil.copyfile(src, target)
        return [target]
    shutil.copytree(src, out, dirs_exist_ok=True)
    return sorted(p for p in out.rglob("*") if p.is_file())
