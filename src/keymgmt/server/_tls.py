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

import base64
import datetime as _dt
import functools
import os
import ssl
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keymgmt.errors import InvalidArgumentError

if TYPE_CHECKING:
    from keymgmt._manager import KeyManager

__all__ = [
    "StoreTlsIdentity",
    "TlsMaterial",
    "principal_of",
    "server_ssl_context",
    "store_ssl_context",
]


@attrs.frozen(kw_only=True)
class TlsMaterial:
    """Where the server's TLS material lives (PEM files).

    Args:
        certificate: the server certificate, optionally followed by its chain.
        private_key: the server's private key (PEM, mode 0600).
        client_ca: the CA bundle client certificates must chain to.
        key_password: the private key's passphrase when the PEM is encrypted.
    """

    certificate: Path
    private_key: Path
    client_ca: Path
    key_password: bytes | None = attrs.field(default=None, repr=False)

    @classmethod
    def from_paths(
        cls,
        certificate: str | os.PathLike[str],
        private_key: str | os.PathLike[str],
        client_ca: str | os.PathLike[str],
        *,
        key_password: str | bytes | None = None,
    ) -> TlsMaterial:
        """Build from three paths (checked to exist; the key to be its owner's only).

        As OpenSSH does with its keys, a key file that group or others may
        read is refused: whoever can read it (if it is not encrypted) can
        impersonate the server.

        Args:
            certificate: the server certificate, optionally followed by its chain.
            private_key: the server's private key (PEM, mode 0600).
            client_ca: the CA bundle client certificates must chain to.
            key_password: the key's passphrase when the PEM is encrypted
                (``keymgmt ca issue --key-out`` writes encrypted keys).

        Raises:
            InvalidArgumentError: a file is missing, or the key file is
                readable by group or others.
        """
        paths = [Path(certificate), Path(private_key), Path(client_ca)]
        for path in paths:
            if not path.is_file():
                raise InvalidArgumentError(f"TLS file {path} does not exist")
        mode = paths[1].stat().st_mode & 0o777
        if os.name == "posix" and mode & 0o077:
            raise InvalidArgumentError(
                f"the server key {paths[1]} is readable by group or others (mode "
                f"{mode:04o}); make it its owner's only (chmod 600)"
            )
        password = key_password.encode("utf-8") if isinstance(key_password, str) else key_password
        return cls(
            certificate=paths[0], private_key=paths[1], client_ca=paths[2], key_password=password
        )


class _NoKeyPassword(Exception):
    """Raised from the password callback: the key is encrypted and no passphrase was given."""


def server_ssl_context(
    material: TlsMaterial, *, require_client_cert: bool = False
) -> ssl.SSLContext:
    """The server-side SSL context: TLS 1.2+, client certificates checked against the bundle.

    TLS 1.2 renegotiation is refused (``OP_NO_RENEGOTIATION``).

    Args:
        material: the server's certificate, key and the client CA bundle.
        require_client_cert: refuse handshakes without a client certificate
            (``CERT_REQUIRED``) instead of answering them with HTTP 401.

    Raises:
        InvalidArgumentError: the files do not load or do not match, or the
            key is encrypted and the material holds no (or the wrong)
            passphrase. OpenSSL never prompts on the terminal.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # No TLS 1.2 renegotiation: a client could make the server redo the costly
    # handshake on one connection as often as it likes (OpenSSL 3 refuses
    # client-initiated renegotiation by default; 1.1.1 does not).
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION

    def password() -> bytes:
        if material.key_password is None:
            raise _NoKeyPassword
        return material.key_password

    try:
        context.load_cert_chain(material.certificate, material.private_key, password=password)
        context.load_verify_locations(cafile=str(material.client_ca))
    except _NoKeyPassword:
        raise InvalidArgumentError(
            f"the server key {material.private_key} is encrypted: give its passphrase "
            "(TlsMaterial key_password; keymgmt serve: --tls-key-passphrase-file or "
            "KEYMGMT_KEY_PASSPHRASE)"
        ) from None
    except (ssl.SSLError, OSError) as exc:
        hint = " (wrong key passphrase?)" if material.key_password is not None else ""
        raise InvalidArgumentError(f"cannot load the TLS material{hint}: {exc}") from None
    context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    context.set_alpn_protocols(["http/1.1"])
    return context


def _pem(certificates: Sequence[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def store_ssl_context(
    km: KeyManager,
    ca: str,
    *,
    names: Sequence[str] = ("localhost", "127.0.0.1"),
    client_ca: Path | None = None,
    require_client_cert: bool = False,
    validity: _dt.timedelta = _dt.timedelta(days=30),
) -> tuple[ssl.SSLContext, x509.Certificate]:
    """A server context whose certificate the store's CA ``ca`` issues now.

    A fresh P-256 key is made in memory and certified under the
    ``tls-server`` profile for ``names``; client certificates must chain to
    the store's root CAs (or to ``client_ca``). The key touches disk only
    for the moment ``ssl`` needs to load it (a 0600 file in a 0700
    directory, removed at once), because the stdlib loads keys from files.

    Args:
        km: the key manager whose PKI issues the certificate.
        ca: the issuing CA's name.
        names: the server's DNS names and IP addresses.
        client_ca: a CA bundle instead of the store's root CAs.
        require_client_cert: refuse handshakes without a client certificate.
        validity: the server certificate's lifetime (clipped to the CA's).

    Returns:
        the context and the server certificate.

    Raises:
        NotFoundError: no such CA.
        InvalidArgumentError: bad names, or the store has no root CA.
    """
    if not names:
        raise InvalidArgumentError("the server certificate needs at least one name")
    authority = km.pki.ca(ca)
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = authority.issue(
        public_key=key.public_key(),
        subject=f"keymgmt-server {names[0]}",
        names=list(names),
        profile="tls-server",
        validity=validity,
    )
    anchors = km.pki.trust_anchors()
    if client_ca is None and not anchors:
        raise InvalidArgumentError("the store has no root CA to trust client certificates")
    with tempfile.TemporaryDirectory(prefix="keymgmt-serve-") as directory:
        base = Path(directory)
        cert_path, key_path, bundle = base / "server.pem", base / "server.key", base / "ca.pem"
        cert_path.write_bytes(_pem([certificate, *authority.chain[:-1]]))
        # ssl loads keys only from files: the key touches the disk encrypted
        # under a one-time random password that never leaves this process,
        # and the folder is removed as soon as the context holds the key.
        password = base64.urlsafe_b64encode(os.urandom(32))
        descriptor = os.open(key_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.BestAvailableEncryption(password),
                )
            )
        bundle.write_bytes(_pem(anchors))
        material = TlsMaterial(
            certificate=cert_path,
            private_key=key_path,
            client_ca=client_ca or bundle,
            key_password=password,
        )
        context = server_ssl_context(material, require_client_cert=require_client_cert)
    return context, certificate


class StoreTlsIdentity:
    """The server's TLS identity issued by the store's CA, renewed while it runs.

    :attr:`context` is the listening context. Its SNI callback — which
    OpenSSL runs on every handshake, with or without a server name — moves
    each new connection to the newest context, so :meth:`renew_if_due`
    can replace the certificate without restarting the server; connections
    already open keep theirs. A certificate is renewed once two thirds of
    its lifetime have passed (by the manager's clock).

    Args:
        km: the key manager whose PKI issues the certificates.
        ca: the issuing CA's name.
        names: the server's DNS names and IP addresses.
        client_ca: a CA bundle instead of the store's root CAs.
        require_client_cert: refuse handshakes without a client certificate.
        validity: each certificate's lifetime.

    Raises:
        NotFoundError: no such CA.
        InvalidArgumentError: bad names, or the store has no root CA.
    """

    def __init__(
        self,
        km: KeyManager,
        ca: str,
        *,
        names: Sequence[str] = ("localhost", "127.0.0.1"),
        client_ca: Path | None = None,
        require_client_cert: bool = False,
        validity: _dt.timedelta = _dt.timedelta(days=30),
    ) -> None:
        self._issue: Callable[[], tuple[ssl.SSLContext, x509.Certificate]] = functools.partial(
            store_ssl_context,
            km,
            ca,
            names=names,
            client_ca=client_ca,
            require_client_cert=require_client_cert,
            validity=validity,
        )
        self._clock = km.clock
        self._lock = threading.Lock()
        self.context, self.certificate = self._issue()
        self._current = self.context
        self.context.sni_callback = self._select

    def __repr__(self) -> str:
        return f"StoreTlsIdentity(serial={self.certificate.serial_number:x})"

    def _select(
        self, ssl_object: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, context: Any
    ) -> None:
        current = self._current
        if current is not context:
            ssl_object.context = current

    def renewal_due(self) -> _dt.datetime:
        """When the current certificate is to be replaced."""
        start, end = self.certificate.not_valid_before_utc, self.certificate.not_valid_after_utc
        return start + (end - start) * 2 / 3

    def renew_if_due(self) -> bool:
        """Issue and switch to a new certificate if the current one is due.

        Returns:
            whether a new certificate was issued.

        Raises:
            KeyMgmtError: issuing failed (the current certificate stays).
        """
        with self._lock:
            if self._clock.now() < self.renewal_due():
                return False
            context, certificate = self._issue()
            context.sni_callback = self._select
            self._current, self.certificate = context, certificate
            return True


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
