"""PKI fixtures: a P-256 root and issuing CA, CSRs, keys made once."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keymgmt import KeyManager
from keymgmt.pki import CertificateAuthority


@pytest.fixture(scope="session")
def leaf_key() -> ec.EllipticCurvePrivateKey:
    """One P-256 key for leaf certificates."""
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def root(km: KeyManager) -> CertificateAuthority:
    """A P-256 root CA."""
    return km.pki.create_root_ca("root", crl_url="http://pki.example/root.crl")


@pytest.fixture
def issuing(root: CertificateAuthority) -> CertificateAuthority:
    """A P-256 intermediate under ``root``."""
    return root.create_intermediate("issuing", ocsp_url="http://ocsp.example")


@pytest.fixture
def make_csr(
    leaf_key: ec.EllipticCurvePrivateKey,
) -> Callable[..., x509.CertificateSigningRequest]:
    """Build a CSR for ``leaf_key`` with a CN, SANs and any extra extensions."""

    def make(
        cn: str = "www",
        names: tuple[str, ...] = ("www.example.com",),
        extra: tuple[tuple[x509.ExtensionType, bool], ...] = (),
    ) -> x509.CertificateSigningRequest:
        builder = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        )
        if names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
        for ext, critical in extra:
            builder = builder.add_extension(ext, critical=critical)
        return builder.sign(leaf_key, hashes.SHA256())

    return make
