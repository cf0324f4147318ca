"""Third review of keymgmt.exchange: each test is a bug found, kept as a regression test."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mlkem, x25519
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from keymgmt._secret import SecretBytes
from keymgmt.algorithms import ExchangeGroup
from keymgmt.errors import (
    InvalidArgumentError,
    MalformedInputError,
    PeerVerificationError,
    RemoteProtocolError,
)
from keymgmt.exchange import (
    NEED_DATA,
    ChannelCipher,
    Closed,
    Credential,
    Data,
    HandshakeState,
    Initiator,
    KeyShare,
    KeyUpdated,
    PeerRole,
    Responder,
    SecureChannel,
    respond,
)
from keymgmt.exchange._hkdf import expand_label
from keymgmt.exchange.handshake._schedule import KeySchedule
from keymgmt.exchange.handshake._verify import check_leaf
from keymgmt.testing import FakeClock, ThrowawayCA, handshake_pair

SERVER = "server.example"
CLIENT = "client.example"
MakeInitiator = Callable[..., Initiator]
MakeResponder = Callable[..., Responder]

_SAN = x509.ObjectIdentifier("2.5.29.17")
_POLICY_CONSTRAINTS = bytes.fromhex("0603551d24")  # OID 2.5.29.36, DER
_EXTENDED_KEY_USAGE = bytes.fromhex("0603551d25")  # OID 2.5.29.37, DER
_BASIC_CONSTRAINTS = bytes.fromhex("0603551d13")  # OID 2.5.29.19, DER


def _leaf_der(ca: ThrowawayCA, key: ed25519.Ed25519PrivateKey, extra: x509.ExtensionType) -> bytes:
    now = FakeClock().now()
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "odd")]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(4242)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(extra, critical=False)
        .sign(ca.key, None)
        .public_bytes(Encoding.DER)
    )


def _duplicate_extension_leaf(ca: ThrowawayCA, key: ed25519.Ed25519PrivateKey) -> bytes:
    """A leaf with two extendedKeyUsage extensions (the second re-labelled in the DER)."""
    placeholder = x509.UnrecognizedExtension(
        x509.ObjectIdentifier("2.5.29.36"), b"\x30\x03\x80\x01\x00"
    )
    der = _leaf_der(ca, key, placeholder)
    assert der.count(_POLICY_CONSTRAINTS) == 1
    return der.replace(_POLICY_CONSTRAINTS, _EXTENDED_KEY_USAGE)


def _duplicate_basic_constraints_ca(ca: ThrowawayCA) -> bytes:
    """A CA certificate (subject: ``ca``'s) with two basicConstraints extensions."""
    key = ed25519.Ed25519PrivateKey.generate()
    now = FakeClock().now()
    der = (
        x509.CertificateBuilder()
        .subject_name(ca.certificate.subject)
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(4243)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier("2.5.29.36"), b"\x30\x00"),
            critical=False,
        )
        .sign(ca.key, None)
        .public_bytes(Encoding.DER)
    )
    assert der.count(_POLICY_CONSTRAINTS) == 1
    return der.replace(_POLICY_CONSTRAINTS, _BASIC_CONSTRAINTS)


def _x400_name_leaf(ca: ThrowawayCA, key: ed25519.Ed25519PrivateKey) -> bytes:
    """A leaf whose subjectAltName holds an x400Address (which pyca cannot represent)."""
    return _leaf_der(ca, key, x509.UnrecognizedExtension(_SAN, b"\x30\x02\xa3\x00"))


def _bad_dns_name_leaf(ca: ThrowawayCA, key: ed25519.Ed25519PrivateKey) -> bytes:
    """A leaf whose subjectAltName holds a DNS name that is not ASCII."""
    return _leaf_der(ca, key, x509.UnrecognizedExtension(_SAN, b"\x30\x03\x82\x01\xff"))


MALFORMED_LEAVES = {
    "duplicate-extension": _duplicate_extension_leaf,
    "x400-address": _x400_name_leaf,
    "non-ascii-dns-name": _bad_dns_name_leaf,
}


def _malformed_credential(ca: ThrowawayCA, kind: str) -> Credential:
    key = ed25519.Ed25519PrivateKey.generate()
    cert = x509.load_der_x509_certificate(MALFORMED_LEAVES[kind](ca, key))
    return Credential((cert,), key)


# -- 1. certificates whose extensions pyca parses lazily --------------------------


@pytest.mark.parametrize("kind", sorted(MALFORMED_LEAVES))
@pytest.mark.parametrize("expected", [None, SERVER])
def test_verify_peer_refuses_a_leaf_with_unparsable_extensions_as_malformed(
    ca: ThrowawayCA, kind: str, expected: str | None
) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(PeerVerificationError) as info:
        ca.verifier().verify_peer(
            [MALFORMED_LEAVES[kind](ca, key)],
            expected_identity=expected,
            role=PeerRole.SERVER,
            at=FakeClock().now(),
        )
    assert info.value.reason == "malformed-certificate"  # type: ignore[attr-defined]


def test_verify_peer_refuses_an_intermediate_with_duplicate_extensions_as_malformed(
    ca: ThrowawayCA, server_cred: Credential
) -> None:
    with pytest.raises(PeerVerificationError) as info:
        ca.verifier().verify_peer(
            [server_cred.chain_der[0], _duplicate_basic_constraints_ca(ca)],
            expected_identity=SERVER,
            role=PeerRole.SERVER,
            at=FakeClock().now(),
        )
    assert info.value.reason == "malformed-certificate"  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", sorted(MALFORMED_LEAVES))
def test_server_certificate_with_unparsable_extensions_fails_the_initiator_cleanly(
    ca: ThrowawayCA, make_initiator: MakeInitiator, make_responder: MakeResponder, kind: str
) -> None:
    initiator = make_initiator()
    responder = make_responder(credential=_malformed_credential(ca, kind))
    responder.receive_data(initiator.start())
    responder.next_event()
    initiator.receive_data(responder.data_to_send())
    with pytest.raises(RemoteProtocolError):
        initiator.next_event()
    assert initiator.state is HandshakeState.FAILED


@pytest.mark.parametrize("kind", sorted(MALFORMED_LEAVES))
def test_client_certificate_with_unparsable_extensions_fails_the_responder_cleanly(
    ca: ThrowawayCA, make_initiator: MakeInitiator, make_responder: MakeResponder, kind: str
) -> None:
    initiator = make_initiator(credential=_malformed_credential(ca, kind))
    responder = make_responder()
    responder.receive_data(initiator.start())
    responder.next_event()
    initiator.receive_data(responder.data_to_send())
    initiator.next_event()
    responder.receive_data(initiator.data_to_send())
    with pytest.raises(RemoteProtocolError):
        responder.next_event()
    assert responder.state is HandshakeState.FAILED


class _CrashingVerifier:
    """A custom verifier with a bug: it raises something that is not ours."""

    def verify_peer(self, chain: object, **kwargs: object) -> object:
        raise RuntimeError("verifier bug")


def test_a_verifier_crash_mid_message_still_fails_the_handshake(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    initiator = make_initiator(verifier=_CrashingVerifier())
    responder = make_responder()
    responder.receive_data(initiator.start())
    responder.next_event()
    initiator.receive_data(responder.data_to_send())
    with pytest.raises(RuntimeError):
        initiator.next_event()
    assert initiator.state is HandshakeState.FAILED


# -- 2. exporter / Expand-Label arguments -----------------------------------------


@pytest.mark.parametrize("length", [-1, 0, 8161, 70000])
def test_exporter_refuses_a_bad_length_with_invalid_argument(
    make_initiator: MakeInitiator, make_responder: MakeResponder, length: int
) -> None:
    session, _ = handshake_pair(make_initiator(), make_responder())
    with pytest.raises(InvalidArgumentError):
        session.export(b"channel binding", length=length)


@pytest.mark.parametrize("length", [-1, 0, 70000])
def test_expand_label_refuses_a_bad_length_with_invalid_argument(length: int) -> None:
    with pytest.raises(InvalidArgumentError):
        expand_label(SecretBytes(bytes(32)), b"key", b"", length)


@pytest.mark.parametrize(
    "kwargs", [{"label": "text"}, {"label": b"x", "context": "text"}, {"label": b"x" * 250}]
)
def test_exporter_refuses_a_label_or_context_of_the_wrong_type_with_invalid_argument(
    make_initiator: MakeInitiator, make_responder: MakeResponder, kwargs: dict[str, object]
) -> None:
    session, _ = handshake_pair(make_initiator(), make_responder())
    with pytest.raises(InvalidArgumentError):
        session.export(**kwargs)  # type: ignore[arg-type]


# -- 3. secrets kept longer than needed ----------------------------------------------


def _secrets_held(obj: object) -> list[object]:
    names = [*getattr(obj, "__dict__", {})]
    for cls in type(obj).__mro__:
        names.extend(getattr(cls, "__slots__", ()))
    values = [getattr(obj, n, None) for n in names]
    return [v for v in values if isinstance(v, SecretBytes | KeySchedule | KeyShare)]


def test_session_drops_its_traffic_secrets_once_the_channel_is_open(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    # The channel's rekey promises that earlier records stay safe when the
    # channel state leaks later; the session must not keep the first keys.
    session, _ = handshake_pair(make_initiator(), make_responder())
    assert len(_secrets_held(session)) == 3
    session.channel()
    assert len(_secrets_held(session)) == 1  # the exporter only
    assert len(session.export(b"still works")) == 32


def test_failed_responder_drops_its_key_schedule(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    initiator, responder = make_initiator(), make_responder()
    responder.receive_data(initiator.start())
    responder.next_event()
    assert _secrets_held(responder)
    responder.receive_data(b"\x01\x03\x00\x00\x13\x00\x11" + bytes(17))  # a bad ClientFinish
    with pytest.raises(RemoteProtocolError):
        responder.next_event()
    assert responder.state is HandshakeState.FAILED
    assert _secrets_held(responder) == []


def test_failed_initiator_drops_its_ephemeral_share(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    initiator, responder = make_initiator(), make_responder()
    responder.receive_data(initiator.start())
    responder.next_event()
    server_hello = bytearray(responder.data_to_send())
    server_hello[5 + 32] = 2  # the group code: P-256 instead of X25519
    initiator.receive_data(bytes(server_hello))
    with pytest.raises(RemoteProtocolError):
        initiator.next_event()
    assert initiator.state is HandshakeState.FAILED
    assert _secrets_held(initiator) == []


# -- 4. the public agreement and channel API on bytes-like and wrong input ------------

BYTES_LIKE = [bytes, bytearray, memoryview]
FAST_GROUPS = [ExchangeGroup.X25519, ExchangeGroup.P256, ExchangeGroup.X25519_MLKEM768]


@pytest.mark.parametrize("group", FAST_GROUPS)
@pytest.mark.parametrize("convert", BYTES_LIKE)
def test_agreement_accepts_any_bytes_like_share(
    group: ExchangeGroup, convert: Callable[[bytes], bytes]
) -> None:
    share = KeyShare.generate(group)
    reply, responder_key = respond(group, convert(share.public_bytes), salt=b"s", info=b"i")
    assert share.derive(convert(reply), salt=b"s", info=b"i") == responder_key


@pytest.mark.parametrize("group", FAST_GROUPS)
def test_agreement_refuses_a_share_that_is_not_bytes_with_a_typed_error(
    group: ExchangeGroup,
) -> None:
    share = KeyShare.generate(group)
    text = "x" * len(share.public_bytes)  # the right length, the wrong type
    with pytest.raises(InvalidArgumentError):
        respond(group, text, salt=b"s", info=b"i")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        share.derive(text, salt=b"s", info=b"i")  # type: ignore[arg-type]


def test_unknown_channel_cipher_is_a_typed_error() -> None:
    with pytest.raises(InvalidArgumentError):
        SecureChannel(
            send_secret=SecretBytes(bytes(32)),
            receive_secret=SecretBytes(bytes(32)),
            cipher="rot13",  # type: ignore[arg-type]
        )


# -- 5. AES-GCM's per-key record budget ------------------------------------------------


def _channel_pair(cipher: ChannelCipher) -> tuple[SecureChannel, SecureChannel]:
    a, b = SecretBytes(bytes(range(32))), SecretBytes(bytes(range(1, 33)))
    return (
        SecureChannel(send_secret=a, receive_secret=b, cipher=cipher),
        SecureChannel(send_secret=b, receive_secret=a, cipher=cipher),
    )


def _skip_records(tx: SecureChannel, rx: SecureChannel, count: int) -> None:
    """Pretend ``count`` records went by (sealing 2^24 of them takes minutes)."""
    tx._send.seq = count
    rx._recv.seq = count


def test_aes_gcm_sender_updates_its_key_before_exceeding_the_record_budget() -> None:
    # RFC 8446 section 5.5: about 2^24.5 full records per AES-GCM key; the
    # channel allowed 2^48, where the confidentiality bound is long gone.
    tx, rx = _channel_pair(ChannelCipher.AES_256_GCM)
    _skip_records(tx, rx, 2**24)
    rx.receive_data(tx.send(b"after the budget"))
    assert rx.next_event() == KeyUpdated()
    assert rx.next_event() == Data(b"after the budget")
    rx.receive_data(tx.send(b"next"))
    assert rx.next_event() == Data(b"next")


def test_aes_gcm_sender_keeps_its_key_below_the_record_budget() -> None:
    tx, rx = _channel_pair(ChannelCipher.AES_256_GCM)
    _skip_records(tx, rx, 2**24 - 1)
    rx.receive_data(tx.send(b"last on this key"))
    assert rx.next_event() == Data(b"last on this key")
    assert rx.next_event() is NEED_DATA


def test_chacha_sender_is_not_forced_to_update_at_the_aes_gcm_budget() -> None:
    tx, rx = _channel_pair(ChannelCipher.CHACHA20_POLY1305)
    _skip_records(tx, rx, 2**24)
    rx.receive_data(tx.send(b"x"))
    assert rx.next_event() == Data(b"x")


def test_chacha_sender_updates_its_key_at_the_sequence_limit_instead_of_failing() -> None:
    tx, rx = _channel_pair(ChannelCipher.CHACHA20_POLY1305)
    _skip_records(tx, rx, 2**48 - 1)
    rx.receive_data(tx.send(b"x") + tx.close())
    assert [rx.next_event() for _ in range(3)] == [KeyUpdated(), Data(b"x"), Closed()]


# -- 6. certificate DER that pyca refuses (or warns about) at load time ----------------

_VERSION_3 = bytes.fromhex("a003020102")  # [0] EXPLICIT INTEGER 2 (v3)
_ED25519_OID = bytes.fromhex("06032b6570")  # 1.3.101.112


def _invalid_version(der: bytes) -> bytes:
    assert der.count(_VERSION_3) == 1
    return der.replace(_VERSION_3, bytes.fromhex("a003020105"))


def _negative_serial(der: bytes) -> bytes:
    at = der.index(_VERSION_3) + len(_VERSION_3)
    assert der[at] == 0x02  # the serial's INTEGER tag; its first content byte follows the length
    out = bytearray(der)
    out[at + 2] |= 0x80
    return bytes(out)


def _unknown_key_type(der: bytes) -> bytes:
    first = der.index(_ED25519_OID)
    second = der.index(_ED25519_OID, first + 1)  # the SubjectPublicKeyInfo's algorithm
    return der[:second] + bytes.fromhex("06032b657f") + der[second + len(_ED25519_OID) :]


LOAD_TIME_DEFECTS = {
    "invalid-version": _invalid_version,
    "negative-serial": _negative_serial,
    "unknown-key-type": _unknown_key_type,
}


@pytest.mark.parametrize("defect", sorted(LOAD_TIME_DEFECTS))
def test_verify_peer_refuses_certificate_der_pyca_cannot_load_as_malformed(
    ca: ThrowawayCA, server_cred: Credential, defect: str
) -> None:
    chain = [LOAD_TIME_DEFECTS[defect](server_cred.chain_der[0])]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a non-positive serial only warns otherwise
        with pytest.raises(PeerVerificationError) as info:
            ca.verifier().verify_peer(
                chain, expected_identity=SERVER, role=PeerRole.SERVER, at=FakeClock().now()
            )
    assert info.value.reason == "malformed-certificate"  # type: ignore[attr-defined]


# -- 7. a used KeyShare keeps its ephemeral private key ----------------------------------

_PRIVATE_KEY_TYPES = (
    x25519.X25519PrivateKey,
    ec.EllipticCurvePrivateKey,
    mlkem.MLKEM768PrivateKey,
    tuple,
)


def _private_keys_held(share: KeyShare) -> list[object]:
    values = [getattr(share, name, None) for name in KeyShare.__slots__]
    return [v for v in values if isinstance(v, _PRIVATE_KEY_TYPES)]


@pytest.mark.parametrize("group", FAST_GROUPS)
def test_key_share_forgets_its_private_key_once_used(group: ExchangeGroup) -> None:
    # "Used once, never stored": a caller that keeps the share object after
    # derive() must not keep the ephemeral key that opens the agreement.
    share = KeyShare.generate(group)
    sent = share.public_bytes
    reply, _ = respond(group, sent, salt=b"s", info=b"i")
    assert _private_keys_held(share)
    share.derive(reply, salt=b"s", info=b"i")
    assert _private_keys_held(share) == []
    assert share.public_bytes == sent


@pytest.mark.parametrize("group", FAST_GROUPS)
def test_key_share_forgets_its_private_key_after_an_invalid_peer_share(
    group: ExchangeGroup,
) -> None:
    share = KeyShare.generate(group)
    with pytest.raises(MalformedInputError):
        share.derive(b"\x00", salt=b"s", info=b"i")
    assert _private_keys_held(share) == []


# -- 8. a credential whose key no peer accepts ------------------------------------------


@pytest.mark.parametrize("curve", [ec.SECP521R1(), ec.SECP256K1()])
def test_credential_refuses_an_ecdsa_key_outside_p256_and_p384(
    ca: ThrowawayCA, curve: ec.EllipticCurve
) -> None:
    # Every peer refuses such a leaf (check_leaf: "unsupported-key"), so the
    # credential would only ever fail handshakes, remotely and late.
    with pytest.raises(InvalidArgumentError):
        ca.issue("curve.example", key=ec.generate_private_key(curve))


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()])
def test_credential_accepts_p256_and_p384_keys(ca: ThrowawayCA, curve: ec.EllipticCurve) -> None:
    assert ca.issue("curve.example", key=ec.generate_private_key(curve)).chain


@pytest.mark.parametrize("curve", [ec.SECP256K1(), ec.BrainpoolP384R1()])
def test_check_leaf_refuses_ecdsa_curves_of_the_right_size_but_not_p256_or_p384(
    ca: ThrowawayCA, curve: ec.EllipticCurve
) -> None:
    now = FakeClock().now()
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "k")]))
        .issuer_name(ca.certificate.subject)
        .public_key(ec.generate_private_key(curve).public_key())
        .serial_number(4244)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca.key, None)
    )
    with pytest.raises(PeerVerificationError) as info:
        check_leaf(leaf, role=PeerRole.SERVER)
    assert info.value.reason == "unsupported-key"  # type: ignore[attr-defined]
