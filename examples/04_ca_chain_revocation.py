"""A small PKI: root and intermediate CA, issuance from a CSR, chain verification, revocation.

Run: python examples/04_ca_chain_revocation.py
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import keymgmt
from keymgmt.errors import CertificateRevokedError
from keymgmt.pki import TLS_SERVER, Purpose


def main() -> None:
    with keymgmt.KeyManager.in_memory() as km:
        root = km.pki.create_root_ca("example-root")  # ECDSA P-256, key sealed in km.keys
        issuing = root.create_intermediate("example-issuing", permitted_names=["example.com"])

        # The subject keeps its own private key and sends a CSR.
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "www")]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("www.example.com")]), False)
            .sign(key, hashes.SHA256())
        )
        cert = issuing.issue(csr, profile=TLS_SERVER)
        print(f"issued serial {cert.serial_number:x} to {cert.subject.rfc4514_string()}")

        path = km.pki.verify(cert, purpose=Purpose.TLS_SERVER, name="www.example.com")
        print("chain:", " -> ".join(c.subject.rfc4514_string() for c in path.chain))

        issuing.revoke(cert.serial_number, "key-compromise")
        try:
            km.pki.verify(cert, purpose=Purpose.TLS_SERVER, name="www.example.com")
        except CertificateRevokedError as exc:
            print(f"after revocation: refused ({exc.reason.value})")
        else:
            raise AssertionError("a revoked certificate verified")

        crl = issuing.crl()
        assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
        print(f"CRL lists {len(crl)} revoked certificate(s); next update {crl.next_update_utc}")


if __name__ == "__main__":
    main()
