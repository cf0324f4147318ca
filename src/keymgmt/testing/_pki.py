"""A throwaway, deterministic certificate hierarchy for tests (root -> intermediate -> leaf).

Built directly with :mod:`cryptography.x509` (trustme's approach: a short,
complete list of extensions) so strategies can draw many chains without a
store. Keys are ECDSA P-256 derived from an integer seed and signatures are
deterministic (RFC 6979), so the same seed gives the same bytes — Hypothesis
can replay and shrink. Never for production: the keys are predictable by
design.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Sequence

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keymgmt.clock import ensure_aware

__all__ = ["CHAIN_DEFECTS", "ChainCase", "build_chain", "build_crl", "derive_key", "name"]

#: The defects :func:`build_chain` can introduce on purpose.
CHAIN_DEFECTS: tuple[str, ...] = ("expired", "wrong-issuer", "revoked", "not-yet-valid")

_DAY = _dt.timedelta(days=1)
_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # P-256 group order


def derive_key(seed: int | str, label: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key determined by ``seed`` and ``label`` (predictable: tests only)."""
    digest = hashlib.sha256(f"keymgmt-testing|{seed}|{label}".encode()).digest()
    scalar = int.from_bytes(digest, "big") % (_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def name(common_name: str) -> x509.Name:
    """An X.509 name holding just ``CN=common_name``."""
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def key_usage(*, ca: bool) -> x509.KeyUsage:
    """A CA's (certificate and CRL signing) or a leaf's (digital signature) key usage."""
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _ca_cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    signer: ec.EllipticCurvePrivateKey,
    serial: int,
    start: _dt.datetime,
    end: _dt.datetime,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
            critical=False,
        )
    )
    return builder.sign(signer, hashes.SHA256(), ecdsa_deterministic=True)


def _crl(
    issuer: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    revoked: Sequence[int],
    at: _dt.datetime,
    number: int = 1,
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(at - _DAY)
        .next_update(at + _DAY)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
    )
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(at - _DAY)
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
    return builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)


@attrs.frozen(kw_only=True)
class ChainCase:
    """A leaf, its intermediate and root, the CRLs, and when to validate.

    Attributes:
        leaf: the end-entity certificate (a TLS server certificate for ``dns_name``).
        intermediate: the issuing CA certificate.
        root: the self-signed trust anchor.
        crls: a CRL from the root (covering the intermediate) and one from the
            intermediate (covering the leaf).
        at: the validation time the case is built for.
        dns_name: the leaf's DNS subject alternative name.
        defect: ``None`` for a valid chain, else one of :data:`CHAIN_DEFECTS`.
    """

    leaf: x509.Certificate
    intermediate: x509.Certificate
    root: x509.Certificate
    crls: tuple[x509.CertificateRevocationList, ...]
    at: _dt.datetime
    dns_name: str
    defect: str | None = None

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """The path, leaf first, trust anchor last."""
        return (self.leaf, self.intermediate, self.root)


def build_chain(
    seed: int | str,
    *,
    at: _dt.datetime,
    dns_name: str = "service.example",
    defect: str | None = None,
) -> ChainCase:
    """Build root -> intermediate -> leaf valid at ``at`` (or broken by ``defect``).

    Args:
        seed: determines every key and serial.
        at: the validation time (aware).
        dns_name: the leaf's DNS name.
        defect: ``None`` or one of :data:`CHAIN_DEFECTS`: ``expired`` (the leaf
            ended before ``at``), ``not-yet-valid`` (it starts after ``at``),
            ``wrong-issuer`` (signed by a key other than the named issuer's),
            ``revoked`` (listed in the intermediate's CRL, key compromise).

    Returns:
        the :class:`ChainCase`.

    Raises:
        InvalidArgumentError: an unknown defect or a naive ``at``.
    """
    from keymgmt.errors import InvalidArgumentError

    at = ensure_aware(at, "at").replace(microsecond=0)
    if defect is not None and defect not in CHAIN_DEFECTS:
        raise InvalidArgumentError(f"unknown chain defect {defect!r}")
    root_key = derive_key(seed, "root")
    inter_key = derive_key(seed, "intermediate")
    leaf_key = derive_key(seed, "leaf")
    serial_base = int.from_bytes(hashlib.sha256(f"serial|{seed}".encode()).digest()[:8], "big")
    serial_base = (serial_base >> 2) + 1
    root = _ca_cert(
        "keymgmt test root", root_key, name("keymgmt test root"), root_key,
        serial_base, at - 30 * _DAY, at + 3650 * _DAY,
    )  # fmt: skip
    inter = _ca_cert(
        "keymgmt test issuing", inter_key, root.subject, root_key,
        serial_base + 1, at - 30 * _DAY, at + 365 * _DAY,
    )  # fmt: skip
    start, end = at - _DAY, at + 90 * _DAY
    if defect == "expired":
        start, end = at - 20 * _DAY, at - _DAY
    elif defect == "not-yet-valid":
        start, end = at + _DAY, at + 20 * _DAY
    signer = derive_key(seed, "impostor") if defect == "wrong-issuer" else inter_key
    leaf_serial = serial_base + 2
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name(dns_name))
        .issuer_name(inter.subject)
        .public_key(leaf_key.public_key())
        .serial_number(leaf_serial)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(inter_key.public_key()),
            critical=False,
        )
        .sign(signer, hashes.SHA256(), ecdsa_deterministic=True)
    )
    crls = (
        _crl(root, root_key, [], at),
        _crl(inter, inter_key, [leaf_serial] if defect == "revoked" else [], at),
    )
    return ChainCase(
        leaf=leaf, intermediate=inter, root=root, crls=crls, at=at, dns_name=dns_name, defect=defect
    )


def build_crl(
    seed: int | str,
    revoked: Sequence[int],
    *,
    at: _dt.datetime,
    number: int = 1,
) -> tuple[x509.CertificateRevocationList, x509.Certificate]:
    """A CRL listing ``revoked`` serials from a throwaway CA, and that CA's certificate."""
    at = ensure_aware(at, "at").replace(microsecond=0)
    key = derive_key(seed, "crl-issuer")
    cert = _ca_cert(
        "keymgmt test CRL issuer", key, name("keymgmt test CRL issuer"), key,
        1, at - 30 * _DAY, at + 3650 * _DAY,
    )  # fmt: skip
    return _crl(cert, key, revoked, at, number), cert
