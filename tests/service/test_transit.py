"""Transit encryption through the service: the key never leaves, the façade shapes hold."""

from __future__ import annotations

import base64

import pytest

from keymgmt import KeyManager
from keymgmt.client import KeyServiceClient
from keymgmt.errors import AlreadyExistsError, DecryptionError, KeyNotFoundError

from .conftest import HttpFactory, Material


@pytest.fixture(scope="module")
def orders_key(server: object, material: Material) -> str:
    """A key ``app-orders`` created through the service by app-1."""
    with material.client(server.url, "app-1") as client:  # type: ignore[attr-defined]
        client.create_key("app-orders")
        client.create_key("app-other")
    return "app-orders"


def test_encrypt_then_decrypt_round_trips(
    service_client: KeyServiceClient, orders_key: str
) -> None:
    ciphertext = service_client.encrypt(orders_key, b"order 42", {"tenant": "eu"})
    assert service_client.decrypt(ciphertext, {"tenant": "eu"}) == b"order 42"


def test_ciphertext_is_the_librarys_format_naming_the_key(
    service_client: KeyServiceClient, orders_key: str
) -> None:
    ciphertext = service_client.encrypt(orders_key, b"x")
    assert ciphertext[:2] == b"km"
    assert orders_key.encode() in ciphertext[:40]


def test_wrong_context_is_the_opaque_decryption_error(
    service_client: KeyServiceClient, orders_key: str
) -> None:
    ciphertext = service_client.encrypt(orders_key, b"x", {"tenant": "eu"})
    with pytest.raises(DecryptionError):
        service_client.decrypt(ciphertext, {"tenant": "us"})


def test_tampered_ciphertext_is_the_opaque_decryption_error(
    service_client: KeyServiceClient, orders_key: str
) -> None:
    ciphertext = bytearray(service_client.encrypt(orders_key, b"x"))
    ciphertext[-1] ^= 1
    with pytest.raises(DecryptionError):
        service_client.decrypt(bytes(ciphertext))


def test_data_key_unwraps_to_the_same_plaintext(
    service_client: KeyServiceClient, orders_key: str
) -> None:
    data_key = service_client.generate_data_key(orders_key, {"file": "a"})
    assert (data_key.key_name, data_key.key_version) == (orders_key, 1)
    assert len(data_key.plaintext) == 32
    unwrapped = service_client.decrypt_data_key(data_key.wrapped, {"file": "a"})
    assert unwrapped.reveal() == data_key.plaintext.reveal()


def test_rewrap_keeps_the_plaintext(service_client: KeyServiceClient, orders_key: str) -> None:
    ciphertext = service_client.encrypt(orders_key, b"keep me", {"k": "v"})
    rewrapped = service_client.rewrap(ciphertext, {"k": "v"})
    assert service_client.decrypt(rewrapped, {"k": "v"}) == b"keep me"


def test_key_description_holds_no_material(http: HttpFactory, orders_key: str) -> None:
    response = http("app-1").get(f"/v1/transit/keys/{orders_key}")
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["algorithm"], body["primary_version"]) == (
        orders_key,
        "aes-256-gcm",
        1,
    )


def test_unknown_key_is_404(service_client: KeyServiceClient) -> None:
    with pytest.raises(KeyNotFoundError):
        service_client.encrypt("app-missing", b"x")


def test_creating_an_existing_key_is_409(service_client: KeyServiceClient, orders_key: str) -> None:
    with pytest.raises(AlreadyExistsError):
        service_client.create_key(orders_key)


def test_ciphertext_of_another_key_is_refused_on_this_keys_url(
    http: HttpFactory, service_client: KeyServiceClient, orders_key: str
) -> None:
    other = service_client.encrypt("app-other", b"not yours")
    response = http("app-1").post(
        f"/v1/transit/keys/{orders_key}/decrypt",
        json={"ciphertext": base64.b64encode(other).decode()},
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_argument",
        "message": "the ciphertext is for key 'app-other', not 'app-orders'",
    }


def test_ciphertext_of_a_key_the_caller_may_not_use_is_never_decrypted(
    http: HttpFactory, material: Material, orders_key: str
) -> None:
    with KeyManager.open(material.store, key_file=material.key_file, create=False) as km:
        if "payroll" not in {k.name for k in km.keys.list()}:
            km.keys.create("payroll")
        secret = km.encrypt("payroll", b"salaries")
    response = http("app-1").post(
        f"/v1/transit/keys/{orders_key}/decrypt",
        json={"ciphertext": base64.b64encode(secret).decode()},
    )
    assert response.status_code == 400
    assert "salaries" not in response.text


def test_malformed_ciphertext_is_the_opaque_decryption_error(
    http: HttpFactory, orders_key: str
) -> None:
    response = http("app-1").post(
        f"/v1/transit/keys/{orders_key}/decrypt", json={"ciphertext": "AAAA"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == {"type": "decryption_failed", "message": "decryption failed"}


def test_changes_made_through_the_service_are_audited_as_the_client_principal(
    orders_key: str, material: Material
) -> None:
    with KeyManager.open(material.store, key_file=material.key_file, create=False) as km:
        entries = [e for e in km.audit.entries() if orders_key in e.object]
    created = [e.actor for e in entries if e.operation == "key.create"]
    assert created == ["app-1"]
    # Aggregated usage (many callers at once) names the service itself.
    assert {e.actor for e in entries if e.operation == "key.usage"} <= {"keymgmt-serve"}
