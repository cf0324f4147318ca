"""Certificates whose extensions pyca refuses only when they are read (lazily).

Built with a placeholder extension (policyConstraints), whose OID is then
relabelled in the DER: a second basicConstraints (``DuplicateExtension``) or
a subjectAltName holding an x400Address (``UnsupportedGeneralNameType``).
The signature no longer matches; the parsers must refuse before it matters.
"""

from __future__ import annotations

import datetime as _dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

_POLICY_CONSTRAINTS_OID = bytes.fromhex("0603551d24")

#: ``(placeholder, relabel)``: the placeholder's content and the OID it becomes.
UNPARSABLE = pytest.mark.parametrize(
    ("placeholder", "relabel"),
    [
        (b"\x30\x00", bytes.fromhex("0603551d13")),  # a second basicConstraints
        (b"\x30\x02\xa3\x00", bytes.fromhex("0603551d11")),  # a SAN with an x400Address
    ],
    ids=["duplicate-extension", "x400-name"],
)


def unparsable_leaf(
    issuer: x509.Name, now: _dt.datetime, placeholder: bytes, relabel: bytes
) -> x509.Certificate:
    """A leaf for "leaf" under ``issuer`` whose extensions pyca refuses on access."""
    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    der = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(77)
        .not_valid_before(now - _dt.timedelta(days=1))
        .not_valid_after(now + _dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier("2.5.29.36"), placeholder),
            critical=False,
        )
        .sign(key, None)
        .public_bytes(serialization.Encoding.DER)
    )
    assert der.count(_POLICY_CONSTRAINTS_OID) == 1
    return x509.load_der_x509_certificate(der.replace(_POLICY_CONSTRAINTS_OID, relabel))
