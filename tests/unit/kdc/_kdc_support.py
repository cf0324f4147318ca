"""Helpers shared by the KDC tests (imported by path: tests are not a package)."""

from __future__ import annotations

import datetime as _dt

import attrs
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from keymgmt import KeyManager, SecretBytes
from keymgmt.errors import KeyNotFoundError, KeyStateError
from keymgmt.kdc import DistributableKey


@attrs.define
class StaticKeySource:
    """A stand-in for km.keys: named keys with a primary version and a state."""

    keys: dict[str, list[tuple[int, bytes, str]]] = attrs.field(factory=dict)

    def add(self, name: str, material: bytes = b"k" * 32) -> None:
        versions = self.keys.setdefault(name, [])
        versions.append((len(versions) + 1, material, "active"))

    def set_state(self, name: str, state: str) -> None:
        version, material, _ = self.keys[name][-1]
        self.keys[name][-1] = (version, material, state)

    def current(self, name: str) -> DistributableKey:
        if name not in self.keys:
            raise KeyNotFoundError(f"no key named {name!r}", key_name=name)
        version, material, state = self.keys[name][-1]
        if state != "active":
            raise KeyStateError(f"{name}#{version} is {state}", key_name=name, version=version)
        return DistributableKey(
            name=name, version=version, algorithm="aes-256-gcm", material=SecretBytes(material)
        )


def minutes(n: float) -> _dt.timedelta:
    return _dt.timedelta(minutes=n)


def client_certificate(km: KeyManager) -> x509.Certificate:
    """A tls-client certificate for ``client-b`` (fixed Ed25519 key) from a new root CA ``root``."""
    ca = km.pki.create_root_ca("root", key_type="ed25519")
    private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    return ca.issue(
        public_key=private.public_key(),
        subject="client-b",
        names=["client-b"],
        profile="tls-client",
    )
