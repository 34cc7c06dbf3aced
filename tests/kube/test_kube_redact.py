"""Credentials never reach logs or reports: S3 keys, tokens, kubeconfig secrets, URL
passwords are masked in text, in parsed objects and in log records."""

from __future__ import annotations

import logging

import pytest
import yaml

from harness.kube.redact import MASK, RedactingFilter, install, redact, redact_object

AWS_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlLXZhbHVl"


@pytest.mark.parametrize("text, secret", [
    (f"AWS_ACCESS_KEY_ID={AWS_ID}", AWS_ID),
    (f"export AWS_SECRET_ACCESS_KEY={AWS_SECRET}", AWS_SECRET),
    (f'{{"aws_secret_access_key": "{AWS_SECRET}"}}', AWS_SECRET),
    (f"Authorization: Bearer {JWT}", JWT),
    (f"token: {JWT}", JWT),
    ("client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQo=", "LS0tLS1CRUdJTiBS"),
    ("s3 endpoint https://minio:hunter2pass@minio.local:9000/b", "hunter2pass"),
    ("password=hunter2 user=bob", "hunter2"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----", "MIIEabc"),
], ids=["aws-id", "aws-secret-env", "aws-secret-json", "bearer", "kubeconfig-token",
        "client-key-data", "url-userinfo", "password", "pem"])
def test_secrets_are_masked_in_text(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out and MASK in out


def test_ordinary_text_is_left_alone() -> None:
    text = "scaled hx-0101-ab12-panic/sk from 1 to 5 pods in 3.2 s (token bucket: 7)"
    assert redact("scaled from 1 to 5 pods in 3.2 s; revision sk-00001") == \
        "scaled from 1 to 5 pods in 3.2 s; revision sk-00001"
    assert "scaled" in redact(text)


def test_kubeconfig_and_secret_objects_are_masked() -> None:
    kubeconfig = yaml.safe_load(f"""
users:
- name: admin
  user:
    token: {JWT}
    client-key-data: QUJD
clusters:
- name: c
  cluster: {{server: "https://10.0.0.1:6443"}}
""")
    out = redact_object(kubeconfig)
    assert out["users"][0]["user"] == {"token": MASK, "client-key-data": MASK}
    assert out["clusters"][0]["cluster"]["server"] == "https://10.0.0.1:6443"
    secret = {"kind": "Secret", "metadata": {"name": "s3creds"},
              "data": {"AWS_ACCESS_KEY_ID": "QUtJQQ==", "region": "dXMtZWFzdA=="},
              "stringData": {"endpoint": "http://minio"}}
    out = redact_object(secret)
    assert out["data"] == {"AWS_ACCESS_KEY_ID": MASK, "region": MASK}
    assert out["stringData"] == {"endpoint": MASK}
    assert out["metadata"] == {"name": "s3creds"}


def test_log_records_pass_through_the_filter(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("harness.test.redact")
    flt = RedactingFilter()
    caplog.handler.addFilter(flt)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("storage uri with key %s and secret=%s", AWS_ID, AWS_SECRET)
            try:
                raise RuntimeError(f"auth failed: Bearer {JWT}")
            except RuntimeError:
                logger.exception("call failed")
    finally:
        caplog.handler.removeFilter(flt)
    assert AWS_ID not in caplog.text and AWS_SECRET not in caplog.text
    assert JWT not in caplog.text and "auth failed" in caplog.text


def test_install_is_idempotent() -> None:
    logger = logging.getLogger("harness.test.install")
    handler = logging.StreamHandler()
    logger.addHandler(handler)
    try:
        assert install(logger) is install(logger)
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
    finally:
        logger.removeHandler(handler)
        logger.filters.clear()
