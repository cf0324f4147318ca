"""A throwaway Ed25519 CA for handshake tests, benchmarks and the demo. Not for production.

It builds certificates directly with :mod:`cryptography.x509` (trustme's
approach: a short, complete list of extensions), so the handshake can be
exercised without a store. Real deployments issue credentials with
:mod:`keymgmt.pki`.
"""

from __future__ import annotations

import datetime as _dt

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID

from keymgmt.clock import ensure_aware
from keymgmt.exchange import (
    ChainVerifier,
    Credential,
    HandshakeComplete,
    Initiator,
    PeerPrivateKey,
    Responder,
    Session,
)
from keymgmt.testing._pki import key_usage
from keymgmt.testing._pki import name as common_name

__all__ = ["ThrowawayCA", "handshake_pair"]

_DAY = _dt.timedelta(days=1)


class ThrowawayCA:
    """An in-memory CA with an Ed25519 key, for tests and demos only.

    Args:
        name: the CA's common name.
        now: the time certificates are valid from (aware).
        lifetime: how long certificates are valid.
        parent: issue this CA's certificate from ``parent`` (an intermediate).
    """

    def __init__(
        self,
        name: str = "keymgmt throwaway CA",
        *,
        now: _dt.datetime,
        lifetime: _dt.timedelta = _dt.timedelta(days=365),
        parent: ThrowawayCA | None = None,
    ) -> None:
        self.name = name
        self.now = ensure_aware(now, "now")
        self.lifetime = lifetime
        self.key = ed25519.Ed25519PrivateKey.generate()
        self._serial = 1
        self.parent = parent
        self.certificate: x509.Certificate
        issuer_name = parent.certificate.subject if parent else common_name(name)
        signer = parent.key if parent else self.key
        builder = (
            x509.CertificateBuilder()
            .subject_name(common_name(name))
            .issuer_name(issuer_name)
            .public_key(self.key.public_key())
            .serial_number(parent._next_serial() if parent else 1)
            .not_valid_before(self.now - _DAY)
            .not_valid_after(self.now + lifetime)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(key_usage(ca=True), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
        )
        self.certificate = builder.sign(signer, None)

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """This CA's certificate and its parents' (excluding the root)."""
        if self.parent is None:
            return ()
        return (self.certificate, *self.parent.chain)

    def root(self) -> ThrowawayCA:
        """The root of this CA's hierarchy."""
        return self if self.parent is None else self.parent.root()

    def verifier(self) -> ChainVerifier:
        """A :class:`ChainVerifier` trusting this CA's root."""
        return ChainVerifier([self.root().certificate])

    def issue(
        self,
        identity: str,
        *,
        server: bool = True,
        client: bool = True,
        not_before: _dt.datetime | None = None,
        not_after: _dt.datetime | None = None,
        key: PeerPrivateKey | None = None,
    ) -> Credential:
        """Issue a leaf for ``identity`` (a DNS name SAN) and return its credential.

        Args:
            identity: the DNS name the leaf carries.
            server: include the serverAuth extended key usage.
            client: include the clientAuth extended key usage.
            not_before: default a day before ``now``.
            not_after: default ``now + lifetime``.
            key: the leaf key (default: a fresh Ed25519 key).
        """
        leaf_key: PeerPrivateKey = key or ed25519.Ed25519PrivateKey.generate()
        usages = []
        if server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        if client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        builder = (
            x509.CertificateBuilder()
            .subject_name(common_name(identity))
            .issuer_name(self.certificate.subject)
            .public_key(leaf_key.public_key())
            .serial_number(self._next_serial())
            .not_valid_before(not_before or self.now - _DAY)
            .not_valid_after(not_after or self.now + self.lifetime)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage(ca=False), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(identity)]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        cert = builder.sign(self.key, None)  # Ed25519 signs without a separate hash
        return Credential((cert, *self.chain), leaf_key)

    def __repr__(self) -> str:
        return f"ThrowawayCA({self.name!r})"


def handshake_pair(
    initiator: Initiator, responder: Responder, *, at: _dt.datetime | None = None
) -> tuple[Session, Session]:
    """Run a handshake between two in-process ends; return (initiator, responder) sessions.

    Raises:
        RemoteProtocolError: whatever either end refuses.
    """
    responder.receive_data(initiator.start(at=at))
    responder.next_event(at=at)
    initiator.receive_data(responder.data_to_send())
    done_i = initiator.next_event(at=at)
    responder.receive_data(initiator.data_to_send())
    done_r = responder.next_event(at=at)
    assert isinstance(done_i, HandshakeComplete)
    assert isinstance(done_r, HandshakeComplete)
    return done_i.session, done_r.session
