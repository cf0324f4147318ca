"""TLS for the service: the server's material, the SSL context, the caller's identity.

The TLS layer does the chain check: the server context trusts only the CA
bundle it is given (the store's CAs) and asks every client for a
certificate. A client that presents none still completes the handshake
(``CERT_OPTIONAL``) so that the service can answer it with a JSON ``401``
instead of a bare TLS alert, and so public endpoints (health, CA
certificates, CRLs, OCSP) stay reachable; a client that presents a
certificate the bundle does not vouch for fails the handshake. Revocation is
checked by the application on every request (see ``_app``), from the peer
chain the connection recorded.

The caller's principal is the certificate's subject common name, else its
first DNS name, else its first URI.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.x509.oid import NameOID

from keymgmt.errors import InvalidArgumentError

__all__ = ["TlsMaterial", "principal_of", "server_ssl_context"]


@attrs.frozen(kw_only=True)
class TlsMaterial:
    """Where the server's TLS material lives (PEM files).

    Args:
        certificate: the server certificate, optionally followed by its chain.
        private_key: the server's private key (unencrypted PEM, mode 0600).
        client_ca: the CA bundle client certificates must chain to.
    """

    certificate: Path
    private_key: Path
    client_ca: Path

    @classmethod
    def from_paths(
        cls,
        certificate: str | os.PathLike[str],
        private_key: str | os.PathLike[str],
        client_ca: str | os.PathLike[str],
    ) -> TlsMaterial:
        """Build from three paths (checked to exist).

        Raises:
            InvalidArgumentError: a file is missing.
        """
        paths = [Path(certificate), Path(private_key), Path(client_ca)]
        for path in paths:
            if not path.is_file():
                raise InvalidArgumentError(f"TLS file {path} does not exist")
        return cls(certificate=paths[0], private_key=paths[1], client_ca=paths[2])


def server_ssl_context(
    material: TlsMaterial, *, require_client_cert: bool = False
) -> ssl.SSLContext:
    """The server-side SSL context: TLS 1.2+, client certificates checked against the bundle.

    Args:
        material: the server's certificate, key and the client CA bundle.
        require_client_cert: refuse handshakes without a client certificate
            (``CERT_REQUIRED``) instead of answering them with HTTP 401.

    Raises:
        InvalidArgumentError: the files do not load or do not match.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    try:
        context.load_cert_chain(material.certificate, material.private_key)
        context.load_verify_locations(cafile=str(material.client_ca))
    except (ssl.SSLError, OSError) as exc:
        raise InvalidArgumentError(f"cannot load the TLS material: {exc}") from None
    context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    context.set_alpn_protocols(["http/1.1"])
    return context


def principal_of(certificate: x509.Certificate) -> str | None:
    """The principal a client certificate names: CN, else first DNS SAN, else first URI SAN."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if names and isinstance(names[0].value, str) and names[0].value:
        return names[0].value
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for kind in (x509.DNSName, x509.UniformResourceIdentifier):
        values = san.get_values_for_type(kind)
        if values:
            return str(values[0])
    return None
