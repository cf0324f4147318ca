"""KeyManager: the one object users hold."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from keymgmt._context import Context
from keymgmt._random import Randomness, SystemRandomness
from keymgmt._secret import SecretBytes
from keymgmt._store import Store
from keymgmt.audit import AuditLog, AuditSink, act_as
from keymgmt.clock import Clock, SystemClock
from keymgmt.errors import ConflictError, InvalidArgumentError, StoreUnavailableError
from keymgmt.keyring import (
    KdfProfile,
    KeyFile,
    Keyring,
    MasterKeySource,
    Passphrase,
    RawMasterKey,
    ResealReport,
    StoreKeys,
    StoreKeyStatus,
)
from keymgmt.revocation import RevocationReason, RevocationRegistry
from keymgmt.storage import Backend, MemoryBackend, SQLiteBackend

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cryptography import x509

    from keymgmt.exchange import Exchange
    from keymgmt.kdc import CompromiseReport, KeyDistributionCenter
    from keymgmt.keys import KeyStore
    from keymgmt.model import DataKey
    from keymgmt.pki import PKI
    from keymgmt.public import PublicKey

__all__ = ["KeyManager"]


def _looks_like_libpq_dsn(text: str) -> bool:
    """``host=... dbname=...``: a PostgreSQL DSN, never a sensible file name."""
    first = text.strip().split(" ", 1)[0]
    return first.partition("=")[0] in ("host", "hostaddr", "port", "dbname", "user", "service")


class KeyManager:
    """The façade: keys, PKI, key distribution, exchange and revocation over one store.

    Built from parts — a storage backend, a master key source, a clock, a
    randomness source and audit sinks — so each can be swapped (a fake clock in
    tests, PostgreSQL in production, an HSM for the master key). Most users
    call :meth:`open` or :meth:`in_memory` instead.

    A KeyManager is safe to share between threads. Use it as a context manager,
    or call :meth:`close`.

    Args:
        backend: where records live.
        master_key: opens the store (or initializes a new one).
        clock: the time source (default: the system clock).
        randomness: the randomness source (default: the OS CSPRNG).
        audit_sinks: receive each audit entry after it is committed.
        actor: the name recorded as the actor in audit entries.
        consistency_interval: at most this many seconds pass before writes by
            other processes (rotations, revocations) are seen; 0 checks
            before every operation.
        create: initialize the store if it has no keyring yet.

    Raises:
        WrongPassphraseError: the master key does not open the store.
        StoreUnavailableError: the store is missing (and ``create`` is false).
    """

    def __init__(
        self,
        *,
        backend: Backend,
        master_key: MasterKeySource,
        clock: Clock | None = None,
        randomness: Randomness | None = None,
        audit_sinks: Sequence[AuditSink] = (),
        actor: str = "local",
        consistency_interval: float = 1.0,
        create: bool = True,
    ) -> None:
        self._clock = clock or SystemClock()
        self._randomness = randomness or SystemRandomness()
        self._backend = backend
        self._lock = threading.RLock()
        self._closed = False
        try:
            created = False
            if Keyring.exists(backend):
                keyring = Keyring.open(backend, master_key, self._randomness)
            elif create:
                try:
                    keyring = Keyring.initialize(backend, master_key, self._randomness)
                    created = True
                except ConflictError:
                    # Another process initialized the store between our check
                    # and our write: open what it created.
                    keyring = Keyring.open(backend, master_key, self._randomness)
            else:
                raise StoreUnavailableError("the store is not initialized (run keymgmt init)")
            self._store = Store(
                backend=backend,
                keyring=keyring,
                clock=self._clock,
                randomness=self._randomness,
                actor=actor,
                consistency_interval=consistency_interval,
                audit_sinks=audit_sinks,
            )
            if created:
                self._store.audit("store.init", "store", backend=type(backend).__name__)
            self._revocation = RevocationRegistry(self._store)
            self._store_keys = StoreKeys(self._store)
            self._context = Context(self._store, self._revocation, self._clock, self._randomness)
        except BaseException:
            backend.close()
            raise

    # -- constructors -----------------------------------------------------------

    @classmethod
    def open(
        cls,
        location: str | os.PathLike[str],
        *,
        passphrase: str | bytes | SecretBytes | None = None,
        key_file: str | os.PathLike[str] | None = None,
        master_key: MasterKeySource | None = None,
        kdf_profile: KdfProfile = KdfProfile.MODERATE,
        create: bool = True,
        **kwargs: Any,
    ) -> KeyManager:
        """Open (or create) a store at a file path or a ``postgresql://`` DSN.

        Exactly one of ``passphrase``, ``key_file`` or ``master_key`` says how
        to get the master key. ``kdf_profile`` applies only when the store is
        created. Other keyword arguments go to :class:`KeyManager`.

        Raises:
            InvalidArgumentError: not exactly one master key source.
            WrongPassphraseError: the master key does not open the store.
            StoreUnavailableError: missing or unreadable store.
            SchemaVersionError: the store was written by a newer keymgmt.
        """
        given = [x is not None for x in (passphrase, key_file, master_key)]
        if sum(given) != 1:
            raise InvalidArgumentError("give exactly one of passphrase=, key_file= or master_key=")
        source: MasterKeySource
        if passphrase is not None:
            source = Passphrase(passphrase, kdf_profile)
        elif key_file is not None:
            source = KeyFile(key_file)
        else:
            assert master_key is not None
            source = master_key
        text = os.fspath(location)
        backend: Backend
        if text.startswith(("postgresql://", "postgres://")):
            from keymgmt.storage.postgres import PostgresBackend

            backend = PostgresBackend(text, create=create)
        elif _looks_like_libpq_dsn(text):
            raise InvalidArgumentError(
                "give a PostgreSQL store as a postgresql:// URL, not key=value pairs"
            )
        else:
            backend = SQLiteBackend(Path(text), create=create)
        return cls(backend=backend, master_key=source, create=create, **kwargs)

    @classmethod
    def in_memory(
        cls,
        *,
        clock: Clock | None = None,
        randomness: Randomness | None = None,
        **kwargs: Any,
    ) -> KeyManager:
        """A throwaway manager on a :class:`MemoryBackend` with a random master key."""
        rng = randomness or SystemRandomness()
        return cls(
            backend=MemoryBackend(),
            master_key=RawMasterKey(rng.token_bytes(32)),
            clock=clock,
            randomness=rng,
            **kwargs,
        )

    # -- lifecycle --------------------------------------------------------------

    def close(self) -> None:
        """Flush what is pending and release the store. Idempotent.

        Raises:
            KeyMgmtError: a flush failed (the first such error; every other
                flush still ran and the store is released all the same).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            failure: BaseException | None = None
            try:
                for hook in self._close_hooks:
                    try:
                        hook()
                    except Exception as exc:  # the rest still flush; raised below
                        failure = failure or exc
            finally:
                self._backend.close()
            if failure is not None:
                raise failure

    @functools.cached_property
    def _close_hooks(self) -> list[Any]:
        return []

    def __enter__(self) -> KeyManager:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"KeyManager({self._backend!r}, {state})"

    def __reduce__(self) -> Any:
        raise TypeError("KeyManager cannot be pickled")

    def _repr_html_(self) -> str:
        """Jupyter's HTML view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import html

        return html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's text view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import pretty

        pretty(self, printer, cycle)

    # -- parts ------------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        """The clock this manager reads."""
        return self._clock

    @property
    def audit(self) -> AuditLog:
        """The hash-chained audit log."""
        return AuditLog(self._store)

    @property
    def revocation(self) -> RevocationRegistry:
        """The revocation registry (keys, certificates, principals)."""
        return self._revocation

    @functools.cached_property
    def pki(self) -> PKI:
        """The PKI: certificate authorities, issuance, CRLs, OCSP, verification."""
        from keymgmt.pki import PKI

        return PKI(self._context, self.keys)

    @functools.cached_property
    def exchange(self) -> Exchange:
        """Authenticated key exchange: handshakes verified by ``pki``, one replay cache."""
        from keymgmt.exchange import Exchange

        exchange = Exchange(self._context, self.pki)
        self._close_hooks.append(exchange.flush_audit)  # batched handshake audit entries
        return exchange

    @functools.cached_property
    def kdc(self) -> KeyDistributionCenter:
        """The key distribution center: principals, policy, key grants, tickets."""
        from keymgmt.kdc import KeyDistributionCenter
        from keymgmt.kdc._integration import (
            ManagerPlaybook,
            ManagerSigner,
            certificate_subjects,
            certificate_verifier,
            key_source,
        )

        return KeyDistributionCenter(
            self._context,
            keys=key_source(self),
            verify_certificate=certificate_verifier(self),
            playbook=ManagerPlaybook(self),
            signer=ManagerSigner(self),
            certificate_subjects=certificate_subjects(self),
        )

    def compromise(
        self,
        *,
        key: str | None = None,
        principal: str | None = None,
        certificate: x509.Certificate | None = None,
        reason: RevocationReason | str = "key-compromise",
        cascade: bool = True,
    ) -> CompromiseReport:
        """Respond to a compromise in one audited playbook; report what was exposed.

        Give exactly one of ``key="name#version"``, ``principal="name"`` or
        ``certificate=cert``: it is revoked, what it protected is rotated, the
        KDC refuses to distribute it, a new revocation list (and, for a
        certificate, a new CRL) is published. See
        :meth:`keymgmt.kdc.KeyDistributionCenter.compromise`.

        Raises:
            InvalidArgumentError: not exactly one subject, or a bad reason.
            NotFoundError: no such key, version or principal.
        """
        return self.kdc.compromise(
            key=key, principal=principal, certificate=certificate, reason=reason, cascade=cascade
        )

    @functools.cached_property
    def keys(self) -> KeyStore:
        """Named keys with versions: lifecycle, rotation, encryption, data keys, export."""
        from keymgmt.keys import KeyStore

        store = KeyStore(self._context)
        self._close_hooks.append(store.close)
        return store

    # -- key shortcuts (see keymgmt.keys.KeyStore for the full docs) --------------

    def encrypt(
        self,
        name: str,
        plaintext: bytes | bytearray | memoryview,
        context: Mapping[str, str] | None = None,
    ) -> bytes | bytearray:
        """Encrypt under the primary version of key ``name``; see :meth:`KeyStore.encrypt`.

        The context is bound as associated data and recorded in the audit
        log (contexts are not secret).

        Raises:
            KeyNotFoundError, KeyStateError, KeyUsageError, InvalidArgumentError.
        """
        return self.keys.encrypt(name, plaintext, context)

    def decrypt(
        self,
        ciphertext: bytes | bytearray | memoryview,
        context: Mapping[str, str] | None = None,
        *,
        allow_compromised: bool = False,
    ) -> bytes:
        """Decrypt a keymgmt ciphertext (it names its key); see :meth:`KeyStore.decrypt`.

        Raises:
            DecryptionError: tampered, truncated, foreign or wrong context (opaque).
            DestroyedKeyError, RevokedError: the version it names cannot decrypt.
        """
        return self.keys.decrypt(ciphertext, context, allow_compromised=allow_compromised)

    def generate_data_key(self, name: str, context: Mapping[str, str] | None = None) -> DataKey:
        """A fresh data key, in plaintext and wrapped under ``name``.

        Raises:
            As :meth:`encrypt`.
        """
        return self.keys.generate_data_key(name, context)

    def decrypt_data_key(
        self,
        wrapped: bytes | bytearray | memoryview,
        context: Mapping[str, str] | None = None,
        *,
        allow_compromised: bool = False,
    ) -> SecretBytes:
        """The plaintext of a wrapped data key.

        Raises:
            As :meth:`decrypt`.
        """
        return self.keys.decrypt_data_key(wrapped, context, allow_compromised=allow_compromised)

    def rewrap(
        self,
        ciphertext: bytes | bytearray | memoryview,
        context: Mapping[str, str] | None = None,
        *,
        allow_compromised: bool = False,
    ) -> bytes:
        """Move a ciphertext or wrapped data key to its key's primary version, opaquely.

        Raises:
            As :meth:`decrypt` and :meth:`encrypt`.
        """
        return self.keys.rewrap(ciphertext, context, allow_compromised=allow_compromised)

    def sign(self, name: str, data: bytes | bytearray | memoryview) -> bytes:
        """Sign with the primary version of key pair ``name``; see :meth:`KeyStore.sign`.

        Raises:
            KeyNotFoundError, KeyUsageError, KeyStateError.
        """
        return self.keys.sign(name, data)

    def verify(
        self,
        name: str,
        data: bytes | bytearray | memoryview,
        signature: bytes | bytearray | memoryview,
        *,
        version: int | None = None,
        allow_compromised: bool = False,
    ) -> None:
        """Check a signature from :meth:`sign` (or a detached one with ``version=``).

        Raises:
            InvalidSignatureError: it does not verify (opaque).
            KeyNotFoundError, KeyUsageError, DestroyedKeyError, RevokedError.
        """
        self.keys.verify(
            name, data, signature, version=version, allow_compromised=allow_compromised
        )

    def public_key(self, name: str, version: int | None = None) -> PublicKey:
        """The public half of a key pair (primary version by default), with its identity.

        A compromised version is refused (``km.keys.forensic_public_key`` is
        the explicit way to examine it); see :meth:`KeyStore.public_key`.

        Raises:
            KeyNotFoundError, KeyUsageError, RevokedError, DestroyedKeyError.
        """
        return self.keys.public_key(name, version)

    def agree(self, name: str, peer: Any, *, info: bytes, length: int = 32) -> SecretBytes:
        """A key shared with ``peer`` (X25519/ECDH + HKDF); see :meth:`KeyStore.agree`.

        Raises:
            KeyNotFoundError, KeyUsageError, KeyStateError, InvalidArgumentError.
        """
        return self.keys.agree(name, peer, info=info, length=length)

    @contextlib.contextmanager
    def acting_as(self, actor: str) -> Iterator[None]:
        """Name ``actor`` in the audit entries written inside the ``with`` block.

        Per context (thread, asyncio task), so concurrent callers do not mix::

            with km.acting_as("alice"):
                km.keys.rotate("payments")   # audited with actor "alice"

        Raises:
            InvalidArgumentError: ``actor`` is empty.
        """
        token = act_as(actor)
        try:
            yield
        finally:
            token.var.reset(token)

    def change_master_key(self, new_source: MasterKeySource) -> None:
        """Re-wrap the store key under a new master key (a new passphrase, file or HSM).

        Nothing is lost and no record is re-encrypted. The change and its
        audit entry are one write: both land or neither does.

        Raises:
            ConflictError: another process changed the master key meanwhile.
        """
        self._store.change_master_key(new_source)

    def rotate_store_key(self, *, master_key: MasterKeySource | None = None) -> int:
        """Make a new store key current (old ones keep unsealing); return its id.

        Wrapped under the master key, in one audited write; other processes
        take it in when they sync. Follow with :meth:`reseal`, then
        :meth:`retire_store_key`. See :class:`keymgmt.keyring.StoreKeys`.

        Args:
            master_key: also re-wrap every store key under this new master
                key source in the same write.

        Raises:
            InvalidArgumentError: ``master_key`` is not a master key source.
            ConflictError: another process changed the master key meanwhile.
        """
        return self._store_keys.rotate(master_key=master_key)

    def reseal(
        self,
        *,
        batch_size: int = 100,
        progress: Callable[[int, int], None] | None = None,
    ) -> ResealReport:
        """Re-seal every record under an older store key, in audited batches (resumable).

        Raises:
            InvalidArgumentError: a bad ``batch_size``.
            StoreError: the backend failed (committed batches stay).
        """
        return self._store_keys.reseal(batch_size=batch_size, progress=progress)

    def retire_store_key(self, key_id: int) -> None:
        """Destroy an old store key once no record uses it (audited).

        Raises:
            NotFoundError: no such store key.
            KeyStateError: it is the current key, or records still use it.
        """
        self._store_keys.retire(key_id)

    def store_key_status(self) -> StoreKeyStatus:
        """The store keys and how many records each seals (reads the whole store).

        Raises:
            StoreError: the backend failed.
        """
        return self._store_keys.status()

    def sync(self) -> None:
        """Pick up rotations and revocations made by other processes now."""
        self._store.sync(force=True)
