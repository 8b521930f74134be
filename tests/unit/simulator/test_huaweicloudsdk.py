"""Huawei's official SDK (huaweicloudsdkecs + huaweicloudsdkcore), unchanged, against the simulator's Huawei dialect:
AK/SK (also temporary, with a security token) and token credentials, the v2.1 attach/show, the v1 list and the
attachable NIC count, and errors carrying the status and code the real cloud would answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException, ServerResponseException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcore.http.http_handler import HttpHandler
from huaweicloudsdkecs.v2 import (
    EcsClient,
    ListServerInterfacesRequest,
    NovaAttachInterfaceFixedIp,
    NovaAttachInterfaceOption,
    NovaAttachInterfaceRequest,
    NovaAttachInterfaceRequestBody,
    NovaShowServerInterfaceRequest,
    ShowServerAttachableNicNumRequest,
)

from ecs_nic_operator.simulator import Simulator, run_in_thread

from .conftest import AK, NET, PORT_FREE, PROJECT, SERVER_A, SERVER_B, SK, SUBNET, TOKEN, make_seed

# Huawei marks the v2.1 calls deprecated in favour of its v1 API; they are still what the product calls.
pytestmark = pytest.mark.filterwarnings("ignore:Method 'nova_:DeprecationWarning")

GHOST = "99999999-9999-4999-8999-999999999999"
SECURITY_TOKEN = "temporary-security-token-0123456789"


def token_handler(token: str) -> HttpHandler:
    """An IAM token instead of a signature, through the SDK's own request hook (it runs after signing)."""

    def use_token(request: Any, **_: Any) -> None:
        request.header_params.pop("Authorization", None)
        request.header_params["X-Auth-Token"] = token

    return HttpHandler().add_request_handler(use_token)


@pytest.fixture
def served() -> Iterator[tuple[str, Simulator]]:
    url, stop = run_in_thread(make_seed(dialect="huawei"))
    try:
        yield url, stop.simulator
    finally:
        stop()


def sdk(url: str, credentials: BasicCredentials, handler: HttpHandler | None = None) -> EcsClient:
    config = HttpConfig.get_default_config()
    config.timeout = (5, 10)
    config.retry_times = 0
    builder = EcsClient.new_builder().with_http_config(config).with_credentials(credentials).with_endpoints([url])
    if handler is not None:
        builder = builder.with_http_handler(handler)
    return builder.build()


def attach(client: EcsClient, server: str, **option: Any) -> Any:
    body = NovaAttachInterfaceRequestBody(interface_attachment=NovaAttachInterfaceOption(**option))
    return client.nova_attach_interface(NovaAttachInterfaceRequest(server_id=server, body=body)).interface_attachment


@pytest.mark.parametrize("auth", ["aksk", "token"])
def test_attach_show_list_and_attachable_count(served: tuple[str, Simulator], auth: str) -> None:
    url, sim = served
    if auth == "aksk":
        client = sdk(url, BasicCredentials(AK, SK, PROJECT))
    else:
        # The AK/SK given here are never used: the hook replaces the signature by the token.
        client = sdk(url, BasicCredentials("unused-ak", "unused-sk", PROJECT), token_handler(TOKEN))

    nic = attach(client, SERVER_A, net_id=NET, fixed_ips=[NovaAttachInterfaceFixedIp(ip_address="192.168.3.4")])
    assert nic.net_id == NET and nic.port_state == "DOWN"
    assert [(ip.subnet_id, ip.ip_address) for ip in nic.fixed_ips] == [(SUBNET, "192.168.3.4")]
    by_port = attach(client, SERVER_A, port_id=PORT_FREE)
    assert by_port.port_id == PORT_FREE

    shown = client.nova_show_server_interface(
        NovaShowServerInterfaceRequest(server_id=SERVER_A, port_id=nic.port_id)
    ).interface_attachment
    assert (shown.port_id, shown.mac_addr) == (nic.port_id, nic.mac_addr)

    listed = client.list_server_interfaces(ListServerInterfacesRequest(server_id=SERVER_A))
    assert [n.port_id for n in listed.interface_attachments] == [nic.port_id, PORT_FREE]
    assert listed.attachable_quantity.free_nic == 1  # maxNics 3
    assert {n.driver_mode for n in listed.interface_attachments} == {"virtio"}
    assert all(n.pci_address for n in listed.interface_attachments)

    count = client.show_server_attachable_nic_num(ShowServerAttachableNicNumRequest(server_id=SERVER_A))
    assert count.attachable_quantity.free_nic == 1
    assert [n.port_id for n in count.interface_attachments] == [nic.port_id, PORT_FREE]
    assert {p["port_id"] for p in sim.state()["servers"][SERVER_A]} == {nic.port_id, PORT_FREE}


def test_temporary_aksk_signs_the_security_token(served: tuple[str, Simulator]) -> None:
    url, sim = served
    sim.credentials["securityToken"] = SECURITY_TOKEN
    temporary = BasicCredentials(AK, SK, PROJECT).with_security_token(SECURITY_TOKEN)
    listed = sdk(url, temporary).list_server_interfaces(ListServerInterfacesRequest(server_id=SERVER_B))
    assert listed.interface_attachments == []
    with pytest.raises(ClientRequestException) as info:
        sdk(url, BasicCredentials(AK, SK, PROJECT)).list_server_interfaces(
            ListServerInterfacesRequest(server_id=SERVER_B)
        )
    assert (info.value.status_code, info.value.error_code) == (401, "APIGW.0301")


def refusal(client: EcsClient, call: Any) -> ClientRequestException | ServerResponseException:
    with pytest.raises((ClientRequestException, ServerResponseException)) as info:
        call(client)
    assert info.value.request_id and info.value.request_id.startswith("req-")
    return info.value  # type: ignore[no-any-return]


def test_errors_carry_the_real_clouds_status_and_code(served: tuple[str, Simulator]) -> None:
    url, sim = served
    client = sdk(url, BasicCredentials(AK, SK, PROJECT))
    attach(client, SERVER_B, port_id=PORT_FREE)
    attach(client, SERVER_B, net_id=NET, fixed_ips=[NovaAttachInterfaceFixedIp(ip_address="192.168.9.9")])

    cases: list[tuple[str, Any, int, str]] = [
        ("server missing", lambda c: attach(c, GHOST, net_id=NET), 404, "Ecs.0614"),
        (
            "server missing (v1)",
            lambda c: c.show_server_attachable_nic_num(ShowServerAttachableNicNumRequest(server_id=GHOST)),
            404,
            "Ecs.0614",
        ),
        ("subnet missing", lambda c: attach(c, SERVER_A, net_id=GHOST), 400, "Ecs.0038"),
        ("port attached elsewhere", lambda c: attach(c, SERVER_A, port_id=PORT_FREE), 400, "Ecs.0919"),
        (
            "IP in use",
            lambda c: attach(c, SERVER_A, net_id=NET, fixed_ips=[NovaAttachInterfaceFixedIp(ip_address="192.168.9.9")]),
            400,
            "Ecs.0010",
        ),
        (
            "IP outside the subnet",
            lambda c: attach(c, SERVER_A, net_id=NET, fixed_ips=[NovaAttachInterfaceFixedIp(ip_address="10.9.9.9")]),
            400,
            "Ecs.0039",
        ),
    ]
    for name, call, status, code in cases:
        err = refusal(client, call)
        assert isinstance(err, ClientRequestException), name
        assert (err.status_code, err.error_code) == (status, code), name

    for _ in range(3):
        attach(client, SERVER_A, net_id=NET)  # maxNics 3
    err = refusal(client, lambda c: attach(c, SERVER_A, net_id=NET))
    assert (err.status_code, err.error_code) == (400, "Ecs.0050")

    sim.world.set_state(SERVER_B, "locked")
    err = refusal(client, lambda c: attach(c, SERVER_B, net_id=NET))
    assert (err.status_code, err.error_code) == (400, "Ecs.0605")

    sim.world.set_state(SERVER_B, "busy")
    err = refusal(client, lambda c: attach(c, SERVER_B, net_id=NET))
    assert (err.status_code, err.error_code) == (400, "Ecs.0100")
    sim.behaviour["busy501Rate"] = 1.0
    err = refusal(client, lambda c: attach(c, SERVER_B, net_id=NET))
    assert isinstance(err, ServerResponseException)
    assert (err.status_code, err.error_code) == (501, "Ecs.0603")

    wrong = sdk(url, BasicCredentials(AK, "not-the-secret-key", PROJECT))
    err = refusal(wrong, lambda c: c.list_server_interfaces(ListServerInterfacesRequest(server_id=SERVER_A)))
    assert (err.status_code, err.error_code) == (401, "APIGW.0301")
    # (429 APIGW.0308 is not observable here: the SDK's urllib3 retries 429 itself and reports code "429".)
