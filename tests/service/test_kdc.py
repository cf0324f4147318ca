"""The KDC protocol over HTTPS: the library's wire messages, byte for byte."""

from __future__ import annotations

import pytest

from keymgmt import KeyManager
from keymgmt.client import KeyServiceClient
from keymgmt.errors import AccessDeniedError, ReplayError
from keymgmt.kdc import KdcClient, SymmetricCredential

from .conftest import HttpFactory, Material


@pytest.fixture(scope="module")
def kdc_principal(material: Material) -> SymmetricCredential:
    """KDC principal ``app-1`` allowed the key ``app-kdc``, registered in the shared store."""
    with KeyManager.open(material.store, key_file=material.key_file, create=False) as km:
        km.keys.create("app-kdc")
        credential = km.kdc.register("app-1")  # the same name as app-1's certificate
        km.kdc.grant("app-1", keys=["app-kdc"])
    return credential


def test_key_request_gets_a_grant_through_the_service(
    service_client: KeyServiceClient, kdc_principal: SymmetricCredential
) -> None:
    client = KdcClient(kdc_principal)
    reply = service_client.kdc(client.key_request("app-kdc"))
    granted = client.receive_key_reply(reply)
    assert (granted.key_name, granted.version, len(granted.material)) == ("app-kdc", 1, 32)


def test_replayed_request_is_refused_by_the_kdc(
    service_client: KeyServiceClient, kdc_principal: SymmetricCredential
) -> None:
    client = KdcClient(kdc_principal)
    request = client.key_request("app-kdc")
    client.receive_key_reply(service_client.kdc(request))
    again = KdcClient(kdc_principal)
    again.key_request("app-kdc")
    with pytest.raises(ReplayError):
        again.receive_key_reply(service_client.kdc(request))


def test_unauthorized_key_is_refused_in_band(
    service_client: KeyServiceClient, kdc_principal: SymmetricCredential
) -> None:
    client = KdcClient(kdc_principal)
    with pytest.raises(AccessDeniedError, match="does not allow key 'app-orders'"):
        client.receive_key_reply(service_client.kdc(client.key_request("app-orders")))


def test_garbage_message_gets_a_kdc_error_message(http: HttpFactory) -> None:
    response = http("app-1").post(
        "/v1/kdc", content=b"\x00garbage", headers={"content-type": "application/octet-stream"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.content


def test_empty_message_is_400(http: HttpFactory) -> None:
    response = http("app-1").post("/v1/kdc", content=b"")
    assert response.status_code == 400


def test_request_in_another_principals_name_is_denied(
    http: HttpFactory, kdc_principal: SymmetricCredential
) -> None:
    request = KdcClient(kdc_principal).key_request("app-kdc")
    response = http("app-3").post("/v1/kdc", content=request)
    assert response.status_code == 403
    assert response.json()["error"]["message"] == (
        "the KDC request is made as 'app-1', but the client certificate names 'app-3'"
    )


def test_principal_without_kdc_rule_is_denied(http: HttpFactory) -> None:
    response = http("nobody").post("/v1/kdc", content=b"\x01")
    assert response.status_code == 403
