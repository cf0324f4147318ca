"""The domain strategies (keys, ciphertexts, certificates, CSRs, CRLs, messages) work."""

from __future__ import annotations

import functools

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keymgmt import KeyManager
from keymgmt.algorithms import KeyKind
from keymgmt.errors import (
    CertificateRevokedError,
    CertificateVerificationError,
    KeyMgmtError,
    KeyUsageError,
    ReplayError,
)
from keymgmt.exchange import NEED_DATA, HelloReceived
from keymgmt.pki import VerificationFailure, load_csr
from keymgmt.testing import in_memory_manager
from keymgmt.testing import strategies as kst

# Each draw builds a manager, keys or certificates: a small budget keeps this cheap.
FEW = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def _ca_manager() -> KeyManager:
    km = in_memory_manager(seed=7)
    km.pki.create_root_ca("csr-test-root")
    return km


# -- keys -------------------------------------------------------------------------------


@FEW
@given(kst.key_specs())
def test_key_specs_are_accepted_at_creation(spec: kst.KeySpec) -> None:
    with in_memory_manager() as km:
        info = km.keys.create("k", spec.algorithm, usage=spec.usage)
    assert (info.algorithm, info.usage, info.kind) == (spec.algorithm, spec.usage, spec.kind)


@given(kst.key_specs(kinds=[KeyKind.SYMMETRIC]))
def test_key_specs_can_be_limited_to_one_kind(spec: kst.KeySpec) -> None:
    assert spec.kind is KeyKind.SYMMETRIC


@FEW
@given(kst.invalid_key_specs())
def test_invalid_key_specs_are_refused_and_create_nothing(spec: kst.KeySpec) -> None:
    with in_memory_manager() as km:
        with pytest.raises(KeyUsageError):
            km.keys.create("k", spec.algorithm, usage=spec.usage)
        assert km.keys.list() == []


@FEW
@given(kst.managed_keys())
def test_managed_keys_exist_in_their_manager(key: kst.ManagedKey) -> None:
    assert key.manager.keys.get(key.name) == key.info
    assert key.info.algorithm is key.spec.algorithm


@FEW
@given(st.data())
def test_managed_keys_in_a_given_manager_get_unique_names(data: st.DataObject) -> None:
    with in_memory_manager() as km:
        first = data.draw(kst.managed_keys(manager=km))
        second = data.draw(kst.managed_keys(manager=km))
        assert first.name != second.name
        assert {k.name for k in km.keys.list()} == {first.name, second.name}


@given(st.binary(max_size=64), st.data())
def test_mutated_always_differs(original: bytes, data: st.DataObject) -> None:
    assert data.draw(kst.mutated(original)) != original


# -- ciphertexts ----------------------------------------------------------------------


@FEW
@given(kst.ciphertexts())
def test_ciphertexts_decrypt_to_their_plaintext(case: kst.CiphertextCase) -> None:
    assert case.manager.decrypt(case.ciphertext, case.context) == case.plaintext


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kst.mutated_ciphertexts())
def test_mutated_ciphertexts_raise_only_keymgmt_errors(case: kst.CiphertextCase) -> None:
    assert case.ciphertext != case.original
    with pytest.raises(KeyMgmtError):
        case.manager.decrypt(case.ciphertext, case.context)


# -- certificates ---------------------------------------------------------------------


def _verify(case: kst.ChainCase) -> object:
    with in_memory_manager() as km:
        return km.pki.verify(
            case.leaf,
            intermediates=[case.intermediate],
            trust_anchors=[case.root],
            crls=list(case.crls),
            at=case.at,
            purpose="tls-server",
            name=case.dns_name,
        )


@FEW
@given(kst.certificate_chains())
def test_certificate_chains_verify(case: kst.ChainCase) -> None:
    assert case.defect is None
    _verify(case)


_EXPECTED = {
    "expired": VerificationFailure.EXPIRED,
    "not-yet-valid": VerificationFailure.NOT_YET_VALID,
    "wrong-issuer": VerificationFailure.BAD_SIGNATURE,
}


@FEW
@given(kst.broken_certificate_chains())
def test_broken_certificate_chains_are_refused_for_their_defect(case: kst.ChainCase) -> None:
    if case.defect == "revoked":
        with pytest.raises(CertificateRevokedError) as revoked:
            _verify(case)
        assert revoked.value.serial == case.leaf.serial_number
        return
    with pytest.raises(CertificateVerificationError) as refused:
        _verify(case)
    assert refused.value.reason is _EXPECTED[str(case.defect)]


@FEW
@given(kst.csrs())
def test_csrs_are_signed_and_issuable(csr: x509.CertificateSigningRequest) -> None:
    assert csr.is_signature_valid
    cert = _ca_manager().pki.ca("csr-test-root").issue(csr)
    assert cert.public_key() == csr.public_key()


@FEW
@given(kst.tampered_csrs())
def test_tampered_csrs_parse_but_are_refused_by_the_ca(der: bytes) -> None:
    assert not x509.load_der_x509_csr(der).is_signature_valid
    with pytest.raises(KeyMgmtError):
        _ca_manager().pki.ca("csr-test-root").issue(load_csr(der))


@FEW
@given(kst.crls())
def test_crls_list_their_serials_under_a_valid_signature(case: kst.CRLCase) -> None:
    public = case.issuer.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert case.crl.is_signature_valid(public)
    assert sorted(r.serial_number for r in case.crl) == sorted(case.serials)


# -- protocol messages ----------------------------------------------------------------


@FEW
@given(kst.kdc_key_requests())
def test_kdc_key_requests_are_answered_once(case: kst.KdcRequestCase) -> None:
    granted = case.client.receive_key_reply(case.transport(case.request))
    assert granted.key_name == case.key_name
    with pytest.raises(ReplayError):
        case.client.receive_key_reply(case.transport(case.request))


@FEW
@given(st.data())
def test_mutated_kdc_requests_fail_with_keymgmt_errors(data: st.DataObject) -> None:
    case = data.draw(kst.kdc_key_requests())
    bad = data.draw(kst.mutated(case.request))
    with pytest.raises(KeyMgmtError):
        case.client.receive_key_reply(case.transport(bad))


@FEW
@given(kst.handshake_hellos())
def test_handshake_hellos_are_accepted_once(case: kst.HandshakeCase) -> None:
    case.responder.receive_data(case.hello)
    assert isinstance(case.responder.next_event(), HelloReceived)
    # The responder remembers the nonce once the initiator authenticated.
    case.initiator.receive_data(case.responder.data_to_send())
    case.initiator.next_event()
    case.responder.receive_data(case.initiator.data_to_send())
    case.responder.next_event()
    again = case.manager.exchange.responder(case.server_credential)
    again.receive_data(case.hello)
    with pytest.raises(ReplayError):
        again.next_event()


@FEW
@given(st.data())
def test_mutated_handshake_hellos_never_complete_a_handshake(data: st.DataObject) -> None:
    case = data.draw(kst.handshake_hellos())
    bad = data.draw(kst.mutated(case.hello))
    try:
        case.responder.receive_data(bad)
        event = case.responder.next_event()
        if event is NEED_DATA:
            return  # a shortened frame (or a larger length field) waits for more bytes
        # A ClientHello is not authenticated by itself: a changed nonce or share
        # is a different, well-formed hello. The server signs the transcript
        # with it, so the real client refuses the ServerHello.
        case.initiator.receive_data(case.responder.data_to_send())
        case.initiator.next_event()
    except KeyMgmtError:
        return
    # Only an intact hello with bytes appended gets this far: those bytes
    # belong to the next frame, not to the hello.
    assert bad.startswith(case.hello), "a mutated ClientHello was accepted"
