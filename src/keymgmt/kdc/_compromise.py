"""Compromise response: the whole playbook in one audited store transaction.

``km.compromise(key=... | principal=... | certificate=...)`` answers "this
leaked". Every write of the response is staged in **one**
:meth:`~keymgmt._store.Store.transact` call, so it lands entirely or not
at all (a failure at any step, or a crash, leaves the store exactly as it
was; there is never a revocation without its rotation):

1. **revoke** — the key version is marked compromised in the key store and
   the revocation registry (:meth:`KeyStore.stage_revoke
   <keymgmt.keys.KeyStore.stage_revoke>`), the principal is disabled and
   revoked, the certificate is revoked at the CA that issued it
   (:meth:`CertificateAuthority.stage_revoke
   <keymgmt.pki.CertificateAuthority.stage_revoke>`) and the principals
   registered with it are revoked;
2. **rotate** — a compromised primary gets a new version, made primary in
   the same write (:meth:`KeyStore.stage_rotate
   <keymgmt.keys.KeyStore.stage_rotate>`); a principal's compromise cascades
   to the key versions it received (unless ``cascade=False``);
3. **refuse further distribution** — follows from 1: the KDC checks the
   registry and the key state on every request, and the registry's cache is
   updated when the transaction commits;
4. **publish** — the KDC's signed revocation list is built on request from
   the registry, numbered by the store generation, so the committed write
   *is* its publication (the report gives the number). A CA's CRL is
   signed by the CA's key over the committed registry, so it is built
   right after the commit (:meth:`CertificateAuthority.crl
   <keymgmt.pki.CertificateAuthority.crl>`, forced); it is due from the
   commit on either way (its entries changed), so if that signing fails
   (the CA's own key is revoked, say) the next ``crl()`` builds it and the
   report says ``crl=due``;
5. **audit** — one ``kdc.compromise`` entry in the same write, beside the
   entries each staged action makes (``key.revoke``, ``revoke``,
   ``key.rotate``, ``kdc.revoke``).

The report of what was exposed is read inside the same transaction: the
grant records of the exposed key versions (which principals received them,
when), the tickets whose keys are exposed, and the data keys generated
under the exposed versions (listed by id with who asked for them; see
:mod:`keymgmt.keys._datakeys` — this process's pending issuances are
flushed first).
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import attrs
from cryptography import x509

from keymgmt import _codec
from keymgmt._store import Txn
from keymgmt.errors import InvalidArgumentError, NotFoundError
from keymgmt.keys._datakeys import DataKeyIssue
from keymgmt.pki._keys import spki_der
from keymgmt.pki._parse import checked_certificate
from keymgmt.revocation import RevocationReason, SubjectKind

if TYPE_CHECKING:
    from keymgmt.kdc._server import GrantRecord, KeyDistributionCenter

__all__ = ["CompromiseReport", "Playbook", "respond"]

_log = logging.getLogger("keymgmt")


class Playbook(Protocol):
    """The steps of a compromise response that belong to other parts.

    The ``stage_*`` steps and :meth:`data_keys` run inside the response's
    transaction: they may run more than once (on a write conflict) and must
    only write through ``txn``.
    """

    def prepare(self) -> None:
        """Before the transaction: write what is pending in memory (usage, data-key log)."""
        ...

    def primary_version(self, name: str) -> int:
        """The primary version of key ``name`` (whatever its state).

        Raises:
            KeyNotFoundError: no such key.
        """
        ...

    def stage_compromise_key_version(
        self, txn: Txn, name: str, version: int, reason: RevocationReason
    ) -> Sequence[str]:
        """Mark a key version compromised (key store state and registry).

        Returns:
            the certificates of the version's public key (a key pair)
            revoked with it, as ``"<ca>:<serial hex>"``.

        Raises:
            KeyNotFoundError: no such key or version.
        """
        ...

    def stage_rotate_if_primary(self, txn: Txn, name: str, version: int) -> int | None:
        """Rotate ``name`` if ``version`` is its primary; the new version, or None."""
        ...

    def data_keys(self, txn: Txn, name: str, version: int) -> Sequence[DataKeyIssue]:
        """The data keys generated under the version."""
        ...

    def stage_revoke_certificate(
        self, txn: Txn, cert: x509.Certificate, reason: RevocationReason
    ) -> str | None:
        """Revoke ``cert`` at this store's CA that issued it: ``"<ca>:<serial hex>"``, or None."""
        ...

    def publish_crl(self, subject: str) -> int | None:
        """After the commit: sign the CA's new CRL; its number, or None if it could not."""
        ...


@attrs.frozen(kw_only=True)
class CompromiseReport:
    """What one compromise response did and what was exposed.

    Attributes:
        subject: what was compromised (``key:<name>#<version>``,
            ``principal:<name>`` or ``certificate:<ca>:<serial hex>``).
        reason: the revocation reason recorded.
        at: when the response ran (the manager's clock).
        revoked: the revocation subjects recorded by this response.
        rotated: new primary versions (``name#version``) made by it.
        exposed_key_versions: key versions now in someone else's hands.
        key_grants: the grants of exposed key versions (who received them, when).
        tickets: session tickets whose keys are exposed (client, service, when).
        data_keys: per exposed key version, how many data keys were generated
            under it (``(name#version, count)``).
        recipients: principals that received exposed material.
        not_exposed: grants made to the subject over forward-secret replies
            (certificate principals): listed, but a leaked certificate key
            does not open them.
        revocation_list_number: the number of the KDC revocation list that
            carries the new revocations (fetch it with
            :meth:`~keymgmt.kdc.KeyDistributionCenter.revocation_list`).
        crl: the CA revocation and new CRL (certificates only):
            ``"<ca>:<serial hex> crl=<number>"``, or ``crl=due`` when it
            could not be signed right away.
        data_key_issues: each data key generated under an exposed version:
            its id (:attr:`keymgmt.model.DataKey.id`), who asked, when.
    """

    subject: str
    reason: RevocationReason
    at: _dt.datetime
    revoked: tuple[str, ...]
    rotated: tuple[str, ...]
    exposed_key_versions: tuple[str, ...]
    key_grants: tuple[GrantRecord, ...]
    tickets: tuple[GrantRecord, ...]
    data_keys: tuple[tuple[str, int], ...]
    recipients: tuple[str, ...]
    not_exposed: tuple[GrantRecord, ...] = ()
    revocation_list_number: int
    crl: str | None = None
    data_key_issues: tuple[DataKeyIssue, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return {
            "subject": self.subject,
            "reason": self.reason.value,
            "at": self.at.isoformat(),
            "revoked": list(self.revoked),
            "rotated": list(self.rotated),
            "exposed_key_versions": list(self.exposed_key_versions),
            "key_grants": [g.id for g in self.key_grants],
            "tickets": [g.id for g in self.tickets],
            "data_keys": dict(self.data_keys),
            "recipients": list(self.recipients),
            "not_exposed": [g.id for g in self.not_exposed],
            "revocation_list_number": self.revocation_list_number,
            "crl": self.crl,
            "data_key_issues": [i.as_dict() for i in self.data_key_issues],
        }

    def _repr_html_(self) -> str:
        """Jupyter's HTML view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import html

        return html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's text view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import pretty

        pretty(self, printer, cycle)


@attrs.frozen(kw_only=True)
class _Outcome:
    """What the transaction did and read (the report, less what comes after the commit)."""

    subject: str
    revoked: tuple[str, ...]
    rotated: tuple[str, ...]
    exposed_key_versions: tuple[str, ...]
    key_grants: tuple[GrantRecord, ...]
    tickets: tuple[GrantRecord, ...]
    data_key_issues: tuple[DataKeyIssue, ...]
    recipients: tuple[str, ...]
    not_exposed: tuple[GrantRecord, ...] = ()
    ca_subject: str | None = None

    @property
    def data_keys(self) -> tuple[tuple[str, int], ...]:
        counts = dict.fromkeys(self.exposed_key_versions, 0)
        for issue in self.data_key_issues:
            counts[issue.key_id] = counts.get(issue.key_id, 0) + 1
        return tuple(counts.items())


def respond(
    kdc: KeyDistributionCenter,
    *,
    key: str | None,
    principal: str | None,
    certificate: x509.Certificate | None,
    reason: RevocationReason | str,
    cascade: bool,
) -> CompromiseReport:
    """Run the playbook for :meth:`KeyDistributionCenter.compromise` (see the module docstring).

    Raises:
        InvalidArgumentError: not exactly one subject, a bad reason or certificate.
        MalformedInputError: certificate material pyca cannot parse.
        NotFoundError / KeyNotFoundError: no such principal, key or version.
    """
    if sum(x is not None for x in (key, principal, certificate)) != 1:
        raise InvalidArgumentError("give exactly one of key=, principal= or certificate=")
    why = RevocationReason.parse(reason)
    response = _Response(kdc, why)
    if key is not None:
        name, version = response.key_version(key)
        return response.run(lambda txn: response.key(txn, name, version))
    if principal is not None:
        return response.run(lambda txn: response.principal(txn, principal, cascade=cascade))
    if not isinstance(certificate, x509.Certificate):
        raise InvalidArgumentError("certificate must be a cryptography x509.Certificate")

    checked_certificate(certificate)  # pyca's lazy parsing errors, before the transaction
    cert = certificate
    return response.run(lambda txn: response.certificate(txn, cert))


class _Response:
    """One compromise response: what runs before, inside and after its transaction."""

    def __init__(self, kdc: KeyDistributionCenter, why: RevocationReason) -> None:
        self.kdc = kdc
        self.why = why
        self.playbook: Playbook | None = kdc._playbook

    def key_version(self, key: str) -> tuple[str, int]:
        if not isinstance(key, str):
            raise InvalidArgumentError("key is a str, name#version (or a key name)")
        name, sep, version = key.partition("#")
        if sep:
            if not (version.isascii() and version.isdigit()) or int(version) < 1:
                raise InvalidArgumentError(f"bad key version in {key!r}; expected name#version")
            return name, int(version)
        if self.playbook is None:
            raise InvalidArgumentError("give the key as name#version")
        return name, self.playbook.primary_version(name)

    def run(self, fn: Callable[[Txn], _Outcome]) -> CompromiseReport:
        store = self.kdc._store
        if self.playbook is not None:
            self.playbook.prepare()
        at = self.kdc._ctx.clock.now()
        outcome: _Outcome = store.transact(fn)
        crl = None
        if outcome.ca_subject is not None and self.playbook is not None:
            # The response has committed: whatever signing the CRL raises (a
            # token error, a bug), the caller gets the report, with the CRL
            # due (the next crl() builds it), never an exception that reads
            # as "nothing happened".
            try:
                number = self.playbook.publish_crl(outcome.ca_subject)
            except Exception:
                _log.warning(
                    "keymgmt: the CRL of %s could not be signed after a compromise "
                    "response; it stays due",
                    outcome.ca_subject,
                    exc_info=True,
                )
                number = None
            crl = f"{outcome.ca_subject} crl={'due' if number is None else number}"
        return CompromiseReport(
            subject=outcome.subject,
            reason=self.why,
            at=at,
            revoked=outcome.revoked,
            rotated=outcome.rotated,
            exposed_key_versions=outcome.exposed_key_versions,
            key_grants=outcome.key_grants,
            tickets=outcome.tickets,
            data_keys=outcome.data_keys if self.playbook is not None else (),
            recipients=outcome.recipients,
            not_exposed=outcome.not_exposed,
            revocation_list_number=store.backend.generation(),
            crl=crl,
            data_key_issues=outcome.data_key_issues,
        )

    # -- inside the transaction ------------------------------------------------------

    def _grants(self, txn: Txn, prefix: str = "") -> list[GrantRecord]:
        from keymgmt.kdc._server import GRANT_KIND, GrantRecord

        found = (GrantRecord.from_bytes(data) for _, data in txn.list(GRANT_KIND, prefix=prefix))
        return [g for g in found if not g.refused]  # markers of refused requests are no grants

    def _version_grants(self, txn: Txn, name: str, version: int) -> list[GrantRecord]:
        """The grants of one key version (records are named by key name, not version)."""
        from keymgmt.kdc._server import key_grant_prefixes

        key_id = f"{name}#{version}"
        return [
            g
            for prefix in key_grant_prefixes(name)
            for g in self._grants(txn, prefix)
            if g.kind == "key" and g.key_id == key_id
        ]

    def _revoke_version(
        self, txn: Txn, name: str, version: int
    ) -> tuple[str | None, Sequence[str]]:
        """Compromise one version and rotate if it is the primary.

        Returns:
            the new version's id (or None), and the certificates of the
            version's public key revoked with it (a key pair).
        """
        if self.playbook is None:
            self.kdc._ctx.revocation.stage(txn, SubjectKind.KEY, f"{name}#{version}", self.why)
            return None, ()
        certificates = self.playbook.stage_compromise_key_version(txn, name, version, self.why)
        new = self.playbook.stage_rotate_if_primary(txn, name, version)
        return (None if new is None else f"{name}#{new}"), certificates

    def _data_keys(self, txn: Txn, versions: Sequence[str]) -> tuple[DataKeyIssue, ...]:
        if self.playbook is None:
            return ()
        out: list[DataKeyIssue] = []
        for key_id in versions:
            name, _, version = key_id.rpartition("#")
            out.extend(self.playbook.data_keys(txn, name, int(version)))
        return tuple(out)

    def _audit(self, txn: Txn, outcome: _Outcome) -> _Outcome:
        txn.audit(
            "kdc.compromise",
            outcome.subject,
            reason=self.why.value,
            revoked=",".join(outcome.revoked),
            rotated=",".join(outcome.rotated),
            exposed=",".join(outcome.exposed_key_versions),
            grants=len(outcome.key_grants),
            tickets=len(outcome.tickets),
            data_keys=len(outcome.data_key_issues),
            recipients=",".join(outcome.recipients),
            crl="due" if outcome.ca_subject else None,
        )
        return outcome

    def key(self, txn: Txn, name: str, version: int) -> _Outcome:
        key_id = f"{name}#{version}"
        new, certificates = self._revoke_version(txn, name, version)
        grants = tuple(self._version_grants(txn, name, version))
        return self._audit(
            txn,
            _Outcome(
                subject=f"key:{key_id}",
                revoked=(f"key:{key_id}", *(f"certificate:{c}" for c in certificates)),
                rotated=() if new is None else (new,),
                exposed_key_versions=(key_id,),
                key_grants=grants,
                tickets=(),
                data_key_issues=self._data_keys(txn, (key_id,)),
                recipients=tuple(sorted({g.principal for g in grants})),
            ),
        )

    def principal(self, txn: Txn, name: str, *, cascade: bool) -> _Outcome:
        from keymgmt.kdc._server import PRINCIPAL_KIND, _Principal

        stored = txn.get(PRINCIPAL_KIND, name)
        if stored is None:
            raise NotFoundError(f"no principal named {name!r}", principal=name)
        self.kdc._stage_principal_revocation(txn, name, self.why)
        revoked = [f"principal:{name}"]
        # A certificate principal's credential is its certificate's key: the
        # certificate is revoked at its CA too (when a CA of this store issued
        # it), so every relying party refuses it, not only the KDC.
        ca_subject = None
        certificate = _Principal.from_json(_codec.loads(stored)).certificate
        if certificate is not None and self.playbook is not None:
            ca_subject = self.playbook.stage_revoke_certificate(txn, certificate, self.why)
            if ca_subject is not None:
                revoked.append(f"certificate:{ca_subject}")
        if certificate is not None and self._key_compromised():
            # Its key is compromised in every certificate that carries it.
            for holder in self._holders(txn, certificate, by_key=True):
                if holder != name:
                    self.kdc._stage_principal_revocation(txn, holder, self.why)
                    revoked.append(f"principal:{holder}")
        every = self._grants(txn)
        mine = [g for g in every if name in (g.principal, g.peer)]
        # A symmetric principal's long-term key opens every reply and ticket
        # sealed under it; a certificate principal's replies were forward-secret.
        exposed = [g for g in mine if g.auth == "symmetric" or g.principal != name]
        exposed_ids = {g.id for g in exposed}  # a set: O(grants), not O(grants^2)
        not_exposed = tuple(g for g in mine if g.id not in exposed_ids)
        versions = sorted({g.key_id for g in exposed if g.kind == "key" and g.key_id})
        tickets = tuple(g for g in exposed if g.kind == "ticket")
        rotated: list[str] = []
        if cascade:
            for key_id in versions:
                key_name, _, version = key_id.rpartition("#")
                new, certificates = self._revoke_version(txn, key_name, int(version))
                revoked.append(f"key:{key_id}")
                revoked.extend(f"certificate:{c}" for c in certificates)
                if new is not None:
                    rotated.append(new)
        exposed_versions = set(versions)
        key_grants = tuple(g for g in every if g.kind == "key" and g.key_id in exposed_versions)
        recipients = {g.principal for g in key_grants} | {name}
        recipients |= {g.peer for g in tickets if g.peer} | {g.principal for g in tickets}
        return self._audit(
            txn,
            _Outcome(
                subject=f"principal:{name}",
                revoked=tuple(revoked),
                rotated=tuple(rotated),
                exposed_key_versions=tuple(versions),
                key_grants=key_grants,
                tickets=tickets,
                data_key_issues=self._data_keys(txn, versions),
                recipients=tuple(sorted(recipients)),
                not_exposed=not_exposed,
                ca_subject=ca_subject,
            ),
        )

    def _key_compromised(self) -> bool:
        """Whether the response's reason says the key itself leaked."""
        return self.why in (
            RevocationReason.KEY_COMPROMISE,
            RevocationReason.CA_COMPROMISE,
            RevocationReason.AA_COMPROMISE,
        )

    def _holders(self, txn: Txn, certificate: x509.Certificate, *, by_key: bool) -> list[str]:
        """Principals registered with ``certificate`` (or, ``by_key``, any with its key)."""
        from keymgmt.kdc._server import PRINCIPAL_KIND, _certificate_issuer_id, _Principal

        serial = certificate.serial_number
        issuer = _certificate_issuer_id(certificate)
        spki = spki_der(certificate) if by_key else b""
        holders = []
        for holder, data in txn.list(PRINCIPAL_KIND):
            found = _Principal.from_json(_codec.loads(data)).certificate
            if found is None:
                continue
            if (found.serial_number == serial and _certificate_issuer_id(found) == issuer) or (
                by_key and spki_der(found) == spki
            ):
                holders.append(holder)
        return holders

    def certificate(self, txn: Txn, certificate: x509.Certificate) -> _Outcome:
        from keymgmt.kdc._server import _certificate_issuer_id

        ca_subject = None
        if self.playbook is not None:
            ca_subject = self.playbook.stage_revoke_certificate(txn, certificate, self.why)
        serial = certificate.serial_number
        issuer = _certificate_issuer_id(certificate)
        subject = ca_subject or f"{issuer}:{format(serial, 'x')}"
        # A compromised key is compromised in every certificate that carries
        # it (a renewal keeps the key): those holders are revoked too.
        holders = self._holders(txn, certificate, by_key=self._key_compromised())
        revoked = [f"certificate:{subject}"] if ca_subject else []
        every = self._grants(txn) if holders else []
        not_exposed: list[GrantRecord] = []
        for holder in holders:
            self.kdc._stage_principal_revocation(txn, holder, self.why)
            revoked.append(f"principal:{holder}")
            not_exposed.extend(g for g in every if holder in (g.principal, g.peer))
        return self._audit(
            txn,
            _Outcome(
                subject=f"certificate:{subject}",
                revoked=tuple(revoked),
                rotated=(),
                exposed_key_versions=(),
                key_grants=(),
                tickets=(),
                data_key_issues=(),
                recipients=tuple(sorted(holders)),
                not_exposed=tuple(not_exposed),
                ca_subject=ca_subject,
            ),
        )
