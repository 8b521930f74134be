"""Secrets never leak: the operator's full log output (DEBUG here, and every operator log of the fault suite),
every Event, every attachment (status and annotations) and every EcsCloud status of the run are searched for
the access key, secret key, password and token values: zero hits. AK/SK, Password and Token credentials are all
used, right and wrong (a wrong value is a secret too), including the credentials-rejected paths.
"""

from __future__ import annotations

import json

from tests.integration.faults.conftest import (
    ACCESS_KEY,
    DOMAIN,
    OPERATOR_LOGS,
    SECRET_VALUES,
    USERNAME,
    Stack,
    apply_cloud,
    credentials_data,
    delete_cloud,
)

CLOUD_CREDENTIALS = "AKSK"
OPERATOR_ARGS = ["--resync-period", "4", "--log-level", "DEBUG"]
WRONG_SECRET_KEY = "flt-wrong-sk-5a0c93e1d7"
WRONG_PASSWORD = "flt-wrong-password-c3b8e2"
WRONG_TOKEN = "flt-wrong-token-94f0a7"


def test_no_credential_value_in_logs_events_or_statuses(stack: Stack) -> None:
    kube, sim = stack.kube, stack.sim
    ns = stack.new_namespace("flt-secrets")
    server = stack.new_server()
    clouds = {
        "aksk": stack.cloud,
        "password": f"{stack.cloud}-password",
        "token": f"{stack.cloud}-token",
        "bad-aksk": f"{stack.cloud}-bad-aksk",
        "bad-password": f"{stack.cloud}-bad-password",
        "bad-token": f"{stack.cloud}-bad-token",
    }
    apply_cloud(kube, clouds["password"], sim.url, kind="Password", secret=credentials_data("Password", sim.url))
    apply_cloud(kube, clouds["token"], sim.url, kind="Token", secret=credentials_data("Token", sim.url))
    apply_cloud(
        kube, clouds["bad-aksk"], sim.url, kind="AKSK", secret={"accessKey": ACCESS_KEY, "secretKey": WRONG_SECRET_KEY}
    )
    apply_cloud(
        kube,
        clouds["bad-password"],
        sim.url,
        kind="Password",
        secret={"authUrl": f"{sim.url}/v3", "username": USERNAME, "password": WRONG_PASSWORD, "domainName": DOMAIN},
    )
    apply_cloud(kube, clouds["bad-token"], sim.url, kind="Token", secret={"token": WRONG_TOKEN})
    try:
        for label, cloud in clouds.items():
            stack.create(ns, label, {**stack.spec(server), "cloudRef": {"name": cloud}})
        for label in ("aksk", "password", "token"):
            stack.wait_ready(ns, label)
        for label in ("bad-aksk", "bad-password", "bad-token"):
            stack.wait_reason(ns, label, {"CredentialsRejected", "CloudNotReady"}, timeout=40)
        # Detach through each credential type too.
        for label in ("aksk", "password", "token"):
            stack.delete(ns, label)
            stack.wait_gone(ns, label)
    finally:
        for key in ("password", "token", "bad-aksk", "bad-password", "bad-token"):
            delete_cloud(kube, clouds[key])

    values = (*SECRET_VALUES, WRONG_SECRET_KEY, WRONG_PASSWORD, WRONG_TOKEN)
    hits: list[str] = []
    assert OPERATOR_LOGS and stack.op.log_path in OPERATOR_LOGS
    for path in OPERATOR_LOGS:
        text = path.read_text(errors="replace")
        assert text.strip(), f"{path} is empty"
        hits += [f"{path.name} ({path.parent.name}): {v[:6]}..." for v in values if v in text]
    events = kube.core.list_event_for_all_namespaces().items
    assert events
    event_text = "\n".join(f"{e.reason} {e.message} {e.note if hasattr(e, 'note') else ''}" for e in events)
    hits += [f"Event: {v[:6]}..." for v in values if v in event_text]
    attachments = kube.custom.list_cluster_custom_object("ecsnic.io", "v1alpha1", "ecsnicattachments")["items"]
    clouds_now = kube.custom.list_cluster_custom_object("ecsnic.io", "v1alpha1", "ecsclouds")["items"]
    objects = json.dumps(
        [{"metadata": o["metadata"], "status": o.get("status")} for o in attachments]
        + [{"status": o.get("status")} for o in clouds_now]
    )
    hits += [f"object: {v[:6]}..." for v in values if v in objects]
    assert hits == [], f"credential values found: {hits}"
