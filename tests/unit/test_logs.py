"""JSON logs carry namespace/name and cloud request ids, and never a secret, whatever a record holds."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from ecs_nic_operator.cloud.auth import AkSkAuth, KeystonePasswordAuth, TokenAuth
from ecs_nic_operator.cloud.errors import CloudUnavailable
from ecs_nic_operator.logs import REDACTED, JsonFormatter, TextFormatter, scrub

SECRET = "S3cr3t-VaLuE-9f8e7d"


def record(msg: str, *args: object, exc: BaseException | None = None, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("ecs_nic_operator.test", logging.WARNING, __file__, 1, msg, args or None, None)
    if exc is not None:
        try:
            raise exc
        except BaseException:
            rec.exc_info = sys.exc_info()
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def as_json(rec: logging.LogRecord) -> dict[str, object]:
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    parsed: dict[str, object] = json.loads(line)
    return parsed


def test_fields_from_kopf_refs_and_controller_messages() -> None:
    entry = as_json(record("hello", k8s_ref={"namespace": "team-a", "name": "db", "uid": "u"}))
    assert (entry["namespace"], entry["name"], entry["level"], entry["message"]) == ("team-a", "db", "warning", "hello")
    entry = as_json(record("%s/%s: %s; next try in %.1f s", "team-b", "nic-1", "quota exceeded", 300.0))
    assert (entry["namespace"], entry["name"]) == ("team-b", "nic-1")
    entry = as_json(record("reconcile of %s/%s failed unexpectedly", "team-c", "x"))
    assert (entry["namespace"], entry["name"]) == ("team-c", "x")


def test_cloud_request_ids_become_a_field() -> None:
    entry = as_json(record("cloud call %s server=%s status=%s request_id=%s", "attach", "srv", 200, "req-0a1b2c"))
    assert entry["request_id"] == "req-0a1b2c"
    err = CloudUnavailable("attach", "boom", status=503, request_id="abc-123")
    assert as_json(record("%s", err))["request_id"] == "abc-123"
    assert as_json(record("x", request_id="given-1"))["request_id"] == "given-1"
    assert "request_id" not in as_json(record("cloud call status=500 request_id=%s", None))


@pytest.mark.parametrize(
    ("msg", "args"),
    [
        ("secret data %s", ({"accessKey": "AK1234", "secretKey": SECRET},)),
        ("login with %s", ({"username": "u", "password": SECRET, "domainName": "d"},)),
        ("headers %s", ({"X-Auth-Token": SECRET},)),
        ("raw: password=%s user=u", (SECRET,)),
        ("raw: token: %s", (SECRET,)),
        ("header Authorization: SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature=%s", ("ab12" * 16,)),
        ("keystone said X-Subject-Token: %s", (SECRET,)),
        ("securityToken=%s", (SECRET,)),
        ("%r", ({"token": SECRET},)),
    ],
)
def test_secrets_in_messages_are_scrubbed(msg: str, args: tuple[object, ...]) -> None:
    rec = record(msg, *args)
    line = JsonFormatter().format(rec)
    text = TextFormatter("%(message)s").format(record(msg, *args))
    hidden = SECRET if SECRET in msg % args else "ab12" * 16
    assert hidden not in line and hidden not in text
    assert REDACTED in json.loads(line)["message"]


def test_secrets_in_extra_fields_and_tracebacks_never_appear() -> None:
    rec = record(
        "attach failed",
        exc=RuntimeError(f"keystone refused password={SECRET}"),
        password=SECRET,
        secretKey=SECRET,
        token=SECRET,
        secret_data={"secretKey": SECRET},
        operation=f"attach token={SECRET}",
    )
    line = JsonFormatter().format(rec)
    assert SECRET not in line
    entry = json.loads(line)
    assert set(entry) <= {"time", "level", "logger", "message", "exception", "operation", "namespace", "name"}
    assert "RuntimeError" in entry["exception"]


def test_auth_reprs_do_not_leak_and_survive_logging() -> None:
    aksk = AkSkAuth("AKIDEXAMPLE1234", SECRET, "proj", security_token=SECRET + "tok")
    token = TokenAuth(SECRET)
    keystone = KeystonePasswordAuth("https://iam.example.com/v3", "user", SECRET, "domain", "proj")
    for auth in (aksk, token, keystone):
        assert SECRET not in repr(auth) and SECRET not in str(auth)
        assert SECRET not in JsonFormatter().format(record("using %r for %s", auth, auth))
    assert "AKID" in repr(aksk) and "AKIDEXAMPLE1234" not in repr(aksk)


def test_scrub_keeps_ordinary_text() -> None:
    for text in (
        "credentials read; https://ecs.example.com answered",
        "Secret ecs-nic-system/ecs-credentials not found",
        "port 1234 is ACTIVE on server abc",
        "AkSkAuth(access_key=AKID..., project_id='p', security_token=unset)",
    ):
        assert scrub(text) == text
