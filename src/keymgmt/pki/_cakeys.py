"""Where CA private keys live: managed key pairs in ``km.keys``.

A CA key is an ordinary key pair of the key store (name ``pki-ca-<ca>``,
usage sign-verify), so it is sealed, versioned and audited like every other
key, moves through the same lifecycle states, and is refused once its
version is revoked. The CA record references it as ``"<key name>#<version>"``
(the key store's own version subject); compromising a CA revokes that key
version in the revocation registry (``SubjectKind.KEY``).

X.509 signing needs the private key object itself (``CertificateBuilder``
signs with it), so this module asks the key store for the version through
its internal API, :func:`~keymgmt.keys._plumbing.use_version` (usage sign-verify,
operation protect: the version must be active and not revoked). Loading an
RSA key validates it (about 30 ms for RSA-2048); the key store caches loaded
versions and replaces them on any change to the key (state, revocation,
destruction), so asking on every signature costs no store read and always
sees the key's current state. This file is the only place the PKI touches
key storage.

A CA key may instead be generated **in a PKCS#11 token**
(:class:`~keymgmt.keyring.pkcs11.Pkcs11Token`): sensitive, never
extractable, sign-only. The store then keeps only a sealed reference to it
(record kind ``pki-tokenkey``, name ``"<ca>#<CKA_ID hex>"``: token label,
key label, CKA_ID, algorithm, public key DER), written in its own audited
transaction like a software key, and the CA record references it as
``"pkcs11:<ca>#<CKA_ID hex>"``. One record per generated key, so a CA
creation that fails after its key was made (the token failed to sign) leaves
an unused reference that a retry does not collide with, and two concurrent
creations of one CA can never pair one key's certificate with another's
reference.
Signing needs the token attached to the PKI (:meth:`CAKeys.add_token`, i.e.
``km.pki.use_token``); without it, or with the token closed or absent,
loading the key raises :class:`~keymgmt.errors.TokenUnavailableError`. A
token key has no key store lifecycle; its compromise revokes the subject
``"pkcs11:<ca>#<id>"`` (``SubjectKind.KEY``) exactly as for a software key.
"""

from __future__ import annotations

import datetime as _dt
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any, Final

from keymgmt._context import Context
from keymgmt._store import Txn
from keymgmt.algorithms import Algorithm, KeyUsage
from keymgmt.errors import (
    AlreadyExistsError,
    IntegrityError,
    InvalidArgumentError,
    KeyStateError,
    KeyUsageError,
    RevokedError,
    TokenUnavailableError,
)
from keymgmt.keys._plumbing import use_version
from keymgmt.pki._keys import SigningKey, is_signing_key
from keymgmt.pki._signer import TOKEN_KEY_KIND, CASigner, TokenKeyReference, TokenSigner
from keymgmt.revocation import RevocationReason, SubjectKind

if TYPE_CHECKING:
    from keymgmt.keyring.pkcs11 import Pkcs11Token
    from keymgmt.keys import KeyStore

__all__ = ["TOKEN_REF_PREFIX", "CAKeys", "key_name_for"]

#: CA key references of keys held in a token: ``"pkcs11:<ca name>#<CKA_ID hex>"``.
TOKEN_REF_PREFIX: Final = "pkcs11:"  # noqa: S105 - a reference prefix, not a secret


def key_name_for(ca_name: str) -> str:
    """The key store name of a CA's private key."""
    return f"pki-ca-{ca_name}"


def _split(ref: str) -> tuple[str, int]:
    name, _, version = ref.rpartition("#")
    if not name or not version.isdigit():
        raise IntegrityError("a CA key reference is malformed")
    return name, int(version)


class CAKeys:
    """CA private keys as managed key pairs (the key store caches the loaded keys)."""

    def __init__(self, keys: KeyStore, context: Context) -> None:
        self._keys = keys
        self._ctx = context
        self._revocation = context.revocation
        self._tokens: dict[str, Pkcs11Token] = {}
        self._tokens_lock = threading.Lock()
        # ref -> (the key store's loaded pair, weakly; the key store's epoch
        # when load() checked it; when its state next changes by date;
        # its revocation index names). See _still_usable.
        self._checked: dict[
            str, tuple[weakref.ref[Any], int, _dt.datetime | None, tuple[str, str]]
        ] = {}

    def add_token(self, token: Pkcs11Token) -> None:
        """Let CA keys held in ``token`` sign (replaces a token of the same label)."""
        with self._tokens_lock:
            self._tokens[token.token_label] = token

    def create(
        self, ca_name: str, algorithm: Algorithm, *, token: Pkcs11Token | None = None
    ) -> tuple[str, CASigner]:
        """Create the CA's key pair (its own audited transaction).

        In the key store, or with ``token`` generated inside the token, the
        store keeping only a sealed reference.

        Returns:
            the reference (``"<key name>#<version>"`` or ``"pkcs11:<ca>#<id>"``)
            and the signer.

        Raises:
            AlreadyExistsError: a key with the CA's key name exists (software keys).
            UnsupportedAlgorithmError: the algorithm cannot be held in a token.
            TokenUnavailableError: the token cannot generate the key.
        """
        if token is not None:
            return self._create_in_token(ca_name, algorithm, token)
        name = key_name_for(ca_name)
        info = self._keys.create(name, algorithm, usage=KeyUsage.SIGN_VERIFY)
        ref = f"{name}#{info.primary_version}"
        return ref, self.load(ref)

    def fresh_version(self, ca_name: str, algorithm: Algorithm) -> tuple[str, CASigner]:
        """A new version of a CA key that a refused creation left behind.

        The caller checked that no CA uses the key: its versions were never
        certified. The new version is fresh material from the key store's
        generator (its own audited transaction), so nothing of the earlier
        attempt is reused.

        Raises:
            AlreadyExistsError: the key is not one keymgmt made for a CA of
                ``algorithm`` (another algorithm, usage, or imported).
        """
        name = key_name_for(ca_name)
        info = self._keys.get(name)
        if (
            info.algorithm is not algorithm
            or info.usage is not KeyUsage.SIGN_VERIFY
            or info.imported
        ):
            raise AlreadyExistsError(
                f"a key named {name!r} exists already and is not a {algorithm.value} CA key "
                "left by a refused creation",
                ca=ca_name,
            )
        version = self._keys.rotate(name)
        ref = f"{name}#{version.version}"
        return ref, self.load(ref)

    def _create_in_token(
        self, ca_name: str, algorithm: Algorithm, token: Pkcs11Token
    ) -> tuple[str, CASigner]:
        from keymgmt.keyring.pkcs11 import TOKEN_SIGNING_ALGORITHMS

        if algorithm not in TOKEN_SIGNING_ALGORITHMS:
            from keymgmt.errors import UnsupportedAlgorithmError

            names = ", ".join(a.value for a in TOKEN_SIGNING_ALGORITHMS)
            raise UnsupportedAlgorithmError(
                f"{algorithm.value} CA keys cannot be held in a PKCS#11 token; expected one "
                f"of: {names}",
                algorithm=algorithm.value,
            )
        store = self._ctx.store
        # The CKA_ID names an object in a token that other stores (and test
        # runs with seeded randomness) share: it must be unique across them,
        # so it comes from the OS, not from the store's injected randomness.
        key_id = os.urandom(16)
        record_name = f"{ca_name}#{key_id.hex()}"
        ref = f"{TOKEN_REF_PREFIX}{record_name}"
        label = f"keymgmt-ca-{ca_name}"
        public_der = token.generate_signing_key(algorithm, label=label, key_id=key_id)
        reference = TokenKeyReference(
            token=token.token_label,
            label=label,
            key_id=key_id,
            algorithm=algorithm,
            public_key_der=public_der,
        )

        def run(txn: Txn) -> None:
            if txn.get_json(TOKEN_KEY_KIND, record_name) is not None:  # 2^-128
                raise AlreadyExistsError(
                    f"a token key reference {record_name!r} exists already", ca=ca_name
                )
            txn.put_json(TOKEN_KEY_KIND, record_name, reference.to_json())
            txn.audit(
                "pki.create-token-key",
                f"key:{ref}",
                algorithm=algorithm.value,
                token=token.token_label,
                key_id=key_id.hex(),
            )

        store.transact(run)
        self.add_token(token)
        return ref, TokenSigner(token, reference)

    def load(self, ref: str) -> CASigner:
        """The signer of ``ref``, refused unless the key may sign.

        Raises:
            KeyNotFoundError: no such key or version.
            RevokedError: the key version is revoked (compromised CA).
            KeyStateError: the version cannot sign (suspended, deactivated, destroyed).
            IntegrityError: the stored key is not a certificate signing key.
            TokenUnavailableError: the key is in a token that is not attached
                (``km.pki.use_token``), closed or absent.
        """
        if ref.startswith(TOKEN_REF_PREFIX):
            return self._load_from_token(ref)
        signer = self._still_usable(ref)
        if signer is not None:
            return signer
        name, version = _split(ref)
        epoch = self._key_store_epoch()  # read first: a change during use() makes it stale
        try:
            loaded = use_version(self._keys, name, version, usage=KeyUsage.SIGN_VERIFY)
        except RevokedError:
            raise RevokedError(
                f"the CA key {ref} is revoked", key_name=name, version=version
            ) from None
        except KeyStateError as exc:
            state = getattr(exc, "state", "unusable")
            raise KeyStateError(
                f"the CA key {ref} is {state} and cannot sign",
                key_name=name,
                version=version,
                state=state,
            ) from None
        except KeyUsageError:
            raise IntegrityError(f"the key {name} cannot sign certificates") from None
        private = getattr(loaded.loaded, "private", None)
        if not is_signing_key(private):
            raise IntegrityError(f"the key {name} cannot sign certificates")
        if epoch is not None:
            try:
                pair = weakref.ref(loaded.loaded)
            except TypeError:  # a loaded form without weak references: check in full each time
                return private
            self._checked[ref] = (
                pair,
                epoch,
                loaded.valid_until,
                (f"{SubjectKind.KEY.value}:{ref}", f"{SubjectKind.KEY.value}:{name}"),
            )
        return private

    def _key_store_epoch(self) -> int | None:
        # The key store bumps it on every change it sees to any key (state,
        # revocation record, destruction, usage counts; here or, after a
        # store sync, in another process). None: a key store without one,
        # so nothing is remembered.
        epoch = getattr(self._keys, "_epoch", None)
        return epoch if isinstance(epoch, int) else None

    def _still_usable(self, ref: str) -> SigningKey | None:
        """The key of ``ref`` if :meth:`load` checked it and nothing changed since.

        The key store's own check (:func:`~keymgmt.keys._plumbing.use_version`) costs
        more than an Ed25519 signature. What it checked stays true until the
        key store sees a change to a key (its epoch moves), a date in the
        version's lifecycle passes (``valid_until``) or the key version or
        key is revoked (one probe of the registry's index each); any of
        these sends :meth:`load` back to the full check, which refuses what
        is no longer usable. The loaded pair is held weakly: once the key
        store drops it (destruction), it is not kept alive here.
        """
        entry = self._checked.get(ref)
        if entry is None:
            return None
        pair, epoch, valid_until, names = entry
        self._ctx.store.sync()  # another process's changes reach the key store first
        if self._key_store_epoch() != epoch:
            return None
        if valid_until is not None and self._ctx.clock.now() >= valid_until:
            return None
        index = self._revocation.index
        if names[0] in index or names[1] in index:
            return None
        loaded = pair()
        private = getattr(loaded, "private", None)
        return private if is_signing_key(private) else None

    def _load_from_token(self, ref: str) -> CASigner:
        record_name = ref[len(TOKEN_REF_PREFIX) :]
        ca_name = record_name.partition("#")[0]
        if self._revocation.is_revoked(SubjectKind.KEY, ref):
            raise RevokedError(f"the CA key {ref} is revoked", key_name=ref, version=None)
        record = self._ctx.store.get_json(TOKEN_KEY_KIND, record_name)
        if record is None:
            raise IntegrityError(f"the token key reference of CA {ca_name!r} is missing")
        reference = TokenKeyReference.from_json(record)
        with self._tokens_lock:
            token = self._tokens.get(reference.token)
        if token is None:
            raise TokenUnavailableError(
                f"the key of CA {ca_name!r} is in PKCS#11 token {reference.token!r}, which is "
                "not attached: call km.pki.use_token(Pkcs11Token(...)) first",
                token=reference.token,
            )
        if token.closed:
            raise TokenUnavailableError(
                f"the PKCS#11 token {reference.token!r} is closed", token=reference.token
            )
        return TokenSigner(token, reference)

    def stage_compromise(self, txn: Txn, ref: str, reason: RevocationReason) -> None:
        """Revoke the key version ``ref`` inside ``txn`` (its CA was compromised).

        Raises:
            InvalidArgumentError: ``reason`` is not a compromise.
        """
        if not reason.is_compromise:
            raise InvalidArgumentError("only a compromise revokes a CA key")
        self._revocation.stage(txn, SubjectKind.KEY, ref, reason)
