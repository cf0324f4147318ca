"""Jupyter and IPython views: HTML and plain-text renderings of keymgmt objects.

Each renderer reads **metadata only** — names, versions, states, dates,
serial numbers, fingerprints, audit fields. None of them touches key
material: they never call ``reveal()``, never unseal a record and never
export a private key. Every value in the HTML is escaped.

keymgmt's own types get ``_repr_html_`` (Jupyter) and ``_repr_pretty_``
(IPython's ``pretty``) methods that call :func:`html` and :func:`text`.
Types that are not ours — ``cryptography.x509.Certificate``,
``CertificateRevocationList``, a list of certificates (a chain) or of audit
entries — are shown by wrapping them: ``keymgmt.views.show(cert)``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import html as _html
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

__all__ = ["View", "html", "pretty", "show", "text"]

#: At most this many rows of a long table (CRL entries, audit entries, keys).
MAX_ROWS = 50

_STYLE = (
    "<style>.keymgmt-view table{border-collapse:collapse;margin:.3em 0}"
    ".keymgmt-view th,.keymgmt-view td{padding:.15em .6em;text-align:left;"
    "border-bottom:1px solid #ddd;font-family:monospace;font-size:90%}"
    ".keymgmt-view .bad{color:#b00020;font-weight:bold}"
    ".keymgmt-view .ok{color:#1b5e20}.keymgmt-view caption{text-align:left;font-weight:bold}"
    "</style>"
)

# States that mean "do not use": shown in red.
_BAD = frozenset(
    {"compromised", "destroyed", "destroyed-compromised", "revoked", "deactivated", "expired"}
)


# -- small building blocks ---------------------------------------------------------------


def _when(value: _dt.datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _cell(value: object) -> str:
    shown = _html.escape(str(value))
    if isinstance(value, str) and value.split(" ")[0] in _BAD:
        return f'<td class="bad">{shown}</td>'
    return f"<td>{shown}</td>"


class _Doc:
    """A document built once and rendered as HTML or as text."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.fields: list[tuple[str, object]] = []
        self.tables: list[tuple[str, Sequence[str], list[Sequence[object]], int]] = []

    def field(self, name: str, value: object) -> None:
        if value is not None and value != "":
            self.fields.append((name, value))

    def table(self, caption: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        all_rows = list(rows)
        hidden = max(0, len(all_rows) - MAX_ROWS)
        self.tables.append((caption, columns, all_rows[:MAX_ROWS], hidden))

    def html(self) -> str:
        out = [_STYLE, '<div class="keymgmt-view">', f"<strong>{_html.escape(self.title)}</strong>"]
        if self.fields:
            out.append("<table>")
            out += [f"<tr><th>{_html.escape(k)}</th>{_cell(v)}</tr>" for k, v in self.fields]
            out.append("</table>")
        for caption, columns, rows, hidden in self.tables:
            out.append(f"<table><caption>{_html.escape(caption)}</caption><tr>")
            out += [f"<th>{_html.escape(c)}</th>" for c in columns]
            out.append("</tr>")
            out += ["<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows]
            if hidden:
                out.append(f'<tr><td colspan="{len(columns)}">… {hidden} more</td></tr>')
            out.append("</table>")
        out.append("</div>")
        return "".join(out)

    def text(self) -> str:
        lines = [self.title]
        width = max((len(k) for k, _ in self.fields), default=0)
        lines += [f"  {k.ljust(width)}  {v}" for k, v in self.fields]
        for caption, columns, rows, hidden in self.tables:
            lines.append(f"  {caption}:")
            cells = [[str(c) for c in columns]] + [[str(v) for v in row] for row in rows]
            widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
            for n, row in enumerate(cells):
                line = "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
                lines.append("    " + (line.upper() if n == 0 else line))
            if hidden:
                lines.append(f"    … {hidden} more")
        return "\n".join(lines)


# -- keys and the manager ------------------------------------------------------------------


def _key_info(info: Any) -> _Doc:
    doc = _Doc(f"Key {info.name!r}")
    doc.field("key id", info.key_id)
    doc.field("algorithm", info.algorithm.value)
    doc.field("usage", info.usage.value)
    doc.field("created", _when(info.created_at))
    doc.field("primary version", info.primary_version)
    doc.field("expires", _when(info.expiry_date))
    policy = info.policy
    if policy.rotation_period is not None:
        doc.field("rotates every", policy.rotation_period)
    if policy.rotate_after_uses is not None:
        doc.field("rotates after uses", policy.rotate_after_uses)
    if info.imported:
        doc.field("imported", "yes")
    # The version timeline, oldest first: when each version appeared, its
    # state now, and what ended it (revocation reason, destruction).
    doc.table(
        "version timeline",
        ["version", "state", "created", "active from", "changed", "uses", "reason", "destroy at"],
        (
            (
                f"v{v.version}" + (" (primary)" if v.is_primary else ""),
                v.state.value,
                _when(v.created_at),
                _when(v.activation_date),
                _when(v.state_changed_at),
                v.uses,
                v.revocation_reason or "",
                _when(v.destroyed_at or v.destroy_at),
            )
            for v in sorted(info.versions, key=lambda v: v.version)
        ),
    )
    return doc


def _key_version(v: Any) -> _Doc:
    doc = _Doc(f"Key {v.key_name!r} version {v.version}")
    doc.field("algorithm", v.algorithm.value)
    doc.field("state", v.state.value)
    doc.field("primary", "yes" if v.is_primary else "no")
    doc.field("created", _when(v.created_at))
    doc.field("uses", v.uses)
    doc.field("revocation reason", v.revocation_reason)
    doc.field("destroy at", _when(v.destroy_at))
    return doc


def _manager(km: Any) -> _Doc:
    doc = _Doc("KeyManager")
    if km._closed:
        doc.field("state", "closed")
        return doc
    doc.field("backend", type(km._backend).__name__)
    doc.field("clock", _when(km.clock.now()))
    keys = km.keys.list()
    doc.field("keys", len(keys))
    doc.field("certificate authorities", len(km.pki.list_cas()))
    doc.field("revocations", len(km.revocation))
    tail = km.audit.tail(1)
    doc.field("audit entries", tail[-1].seq if tail else 0)
    doc.table(
        "keys",
        ["name", "algorithm", "usage", "primary", "state", "versions"],
        (
            (
                i.name,
                i.algorithm.value,
                i.usage.value,
                i.primary_version,
                i.primary.state.value,
                len(i.versions),
            )
            for i in keys
        ),
    )
    return doc


# -- certificates, chains, CRLs -----------------------------------------------------------


#: What pyca raises when it parses a certificate's or CRL's extensions (lazily, on first
#: use) and refuses them: a view shows such an object (often the one being debugged)
#: with its extensions marked unreadable instead of failing.
_UNREADABLE = (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType)


def _unreadable_extensions(obj: Any) -> str | None:
    """Why ``obj.extensions`` cannot be read, or None when it can."""
    try:
        obj.extensions  # noqa: B018 - parsed on first access
    except _UNREADABLE as exc:
        return f"unreadable ({type(exc).__name__}: {exc})"
    return None


def _extension(obj: Any, kind: type[x509.ExtensionType]) -> Any:
    """The value of ``obj``'s extension of type ``kind``; None if absent or unreadable."""
    try:
        return obj.extensions.get_extension_for_class(kind).value
    except (x509.ExtensionNotFound, *_UNREADABLE):
        return None


def _names(cert: x509.Certificate) -> str:
    san = _extension(cert, x509.SubjectAlternativeName)
    if san is None:
        return ""
    return ", ".join(str(getattr(n, "value", n)) for n in san)


def _key_type(cert: x509.Certificate) -> str:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return "unsupported"
    curve = getattr(key, "curve", None)
    if curve is not None:
        return f"EC {curve.name}"
    size = getattr(key, "key_size", None)
    kind = type(key).__name__.replace("PublicKey", "").lstrip("_")
    return f"{kind} {size}" if size else kind


def _is_ca(cert: x509.Certificate) -> bool:
    constraints = _extension(cert, x509.BasicConstraints)
    return bool(constraints is not None and constraints.ca)


def _ca_flag(cert: x509.Certificate) -> str:
    """ "yes", "no", or "unknown" when the extensions cannot be read."""
    if _unreadable_extensions(cert) is not None:
        return "unknown"
    return "yes" if _is_ca(cert) else "no"


def _usages(cert: x509.Certificate) -> str:
    eku = _extension(cert, x509.ExtendedKeyUsage)
    if eku is None:
        return ""
    # pyca names the OIDs it knows; any other is "Unknown OID", so show its dotted form.
    names = (getattr(u, "_name", "Unknown OID") for u in eku)
    return ", ".join(
        n if n != "Unknown OID" else u.dotted_string for n, u in zip(names, eku, strict=True)
    )


def _fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _certificate(cert: x509.Certificate, title: str | None = None) -> _Doc:
    doc = _Doc(title or f"Certificate {cert.subject.rfc4514_string()}")
    doc.field("subject", cert.subject.rfc4514_string())
    doc.field("issuer", cert.issuer.rfc4514_string())
    doc.field("serial", format(cert.serial_number, "x"))
    doc.field("not before", _when(cert.not_valid_before_utc))
    doc.field("not after", _when(cert.not_valid_after_utc))
    doc.field("key", _key_type(cert))
    doc.field("names", _names(cert))
    doc.field("CA", _ca_flag(cert))
    doc.field("extended key usage", _usages(cert))
    doc.field("extensions", _unreadable_extensions(cert))
    doc.field("SHA-256", _fingerprint(cert))
    return doc


def _chain_rows(chain: Sequence[x509.Certificate]) -> list[Sequence[object]]:
    return [
        (
            n,
            c.subject.rfc4514_string(),
            format(c.serial_number, "x"),
            _when(c.not_valid_after_utc),
            {"yes": "CA", "no": "leaf"}.get(_ca_flag(c), "unknown"),
            _key_type(c),
        )
        for n, c in enumerate(chain)
    ]


_CHAIN_COLUMNS = ["#", "subject", "serial", "not after", "role", "key"]


def _chain(chain: Sequence[x509.Certificate]) -> _Doc:
    doc = _Doc(f"Certificate chain ({len(chain)} certificates, leaf first)")
    doc.table("path", _CHAIN_COLUMNS, _chain_rows(chain))
    return doc


def _verified_path(path: Any) -> _Doc:
    doc = _Doc(f"Verified path for {path.leaf.subject.rfc4514_string()}")
    doc.field("purpose", getattr(path.purpose, "value", path.purpose))
    doc.field("name", path.name)
    doc.field("at", _when(path.at))
    doc.field("engine", path.engine)
    doc.field("revocation checked by", ", ".join(getattr(r, "value", r) for r in path.revocation))
    doc.table("path", _CHAIN_COLUMNS, _chain_rows(path.chain))
    return doc


def _crl(crl: x509.CertificateRevocationList) -> _Doc:
    doc = _Doc(f"CRL from {crl.issuer.rfc4514_string()}")
    number = _extension(crl, x509.CRLNumber)
    base = _extension(crl, x509.DeltaCRLIndicator)
    doc.field("number", number and number.crl_number)
    doc.field("delta of", base and base.crl_number)
    doc.field("extensions", _unreadable_extensions(crl))
    doc.field("this update", _when(crl.last_update_utc))
    doc.field("next update", _when(crl.next_update_utc))
    doc.field("entries", len(crl))
    rows = []
    for entry in crl:
        flag = _extension(entry, x509.CRLReason)
        reason = flag.reason.value if flag is not None else "unspecified"
        rows.append((format(entry.serial_number, "x"), _when(entry.revocation_date_utc), reason))
    doc.table("revoked", ["serial", "revoked at", "reason"], rows)
    return doc


def _issued(issued: Any) -> _Doc:
    doc = _certificate(issued.certificate, f"Issued certificate {issued.serial_hex}")
    doc.field("issued by", issued.ca)
    doc.field("profile", issued.profile)
    if issued.revocation is not None:
        doc.field("revoked", f"revoked {issued.revocation.reason.value}")
    return doc


def _authority(ca: Any) -> _Doc:
    doc = _certificate(ca.certificate, f"Certificate authority {ca.name!r}")
    doc.field("parent", ca.parent or "(root)")
    doc.field("CRL URL", ca.crl_url)
    doc.field("OCSP URL", ca.ocsp_url)
    return doc


# -- audit -------------------------------------------------------------------------------------


def _details(details: Mapping[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(details.items()))


def _audit_rows(entries: Iterable[Any]) -> list[Sequence[object]]:
    return [
        (e.seq, _when(e.time), e.actor, e.operation, e.object, e.outcome, _details(e.details))
        for e in entries
    ]


_AUDIT_COLUMNS = ["seq", "time", "actor", "operation", "object", "outcome", "details"]


def _audit_entries(entries: Sequence[Any]) -> _Doc:
    doc = _Doc(f"Audit log excerpt ({len(entries)} entries)")
    doc.table("entries", _AUDIT_COLUMNS, _audit_rows(entries))
    return doc


def _audit_entry(entry: Any) -> _Doc:
    doc = _Doc(f"Audit entry {entry.seq}")
    doc.field("time", _when(entry.time))
    doc.field("actor", entry.actor)
    doc.field("operation", entry.operation)
    doc.field("object", entry.object)
    doc.field("outcome", entry.outcome)
    doc.field("details", _details(entry.details))
    doc.field("hash", entry.hash.hex()[:16] + "…")
    return doc


def _audit_log(log: Any) -> _Doc:
    entries = log.tail(20)
    doc = _Doc(f"Audit log (last {len(entries)} entries; verify() checks the whole chain)")
    doc.table("entries", _AUDIT_COLUMNS, _audit_rows(entries))
    return doc


# -- handshake results -----------------------------------------------------------------------


def _session(session: Any) -> _Doc:
    doc = _Doc(f"Handshake session ({session.role.value})")
    doc.field("peer", session.peer.identity)
    doc.field("group", session.group.value)
    # The session id is a channel binding both ends compute; a short prefix
    # identifies the session without handing out the whole value.
    doc.field("session id", session.session_id.hex()[:16] + "…")
    doc.table("peer chain", _CHAIN_COLUMNS, _chain_rows(session.peer.chain))
    return doc


# -- the key distribution center ------------------------------------------------------------------

_PRINCIPAL_COLUMNS = [
    "name",
    "credential",
    "status",
    "credential version",
    "created",
    "certificate",
]


def _principal_row(info: Any) -> Sequence[object]:
    status = "revoked" if info.revoked else ("enabled" if info.enabled else "disabled")
    certificate = ""
    if info.certificate_serial:
        certificate = f"{info.certificate_serial} ({info.certificate_issuer or '?'})"
    return (
        info.name,
        info.credential,
        status,
        info.credential_version,
        _when(info.created_at),
        certificate,
    )


def _principal(info: Any) -> _Doc:
    # PrincipalInfo never holds the long-term key: there is nothing to leave out.
    doc = _Doc(f"KDC principal {info.name!r}")
    for name, value in zip(_PRINCIPAL_COLUMNS[1:], _principal_row(info)[1:], strict=True):
        doc.field(name, value)
    return doc


def _principals(infos: Sequence[Any]) -> _Doc:
    doc = _Doc(f"KDC principals ({len(infos)})")
    doc.table("principals", _PRINCIPAL_COLUMNS, [_principal_row(i) for i in infos])
    return doc


_GRANT_COLUMNS = ["grant", "kind", "principal", "key / peer", "issued", "expires", "auth"]


def _grant_row(grant: Any) -> Sequence[object]:
    return (
        grant.id,
        grant.kind,
        grant.principal,
        grant.key_id if grant.kind == "key" else (grant.peer or ""),
        _when(grant.issued_at),
        _when(grant.expires_at),
        grant.auth,
    )


def _grant(grant: Any) -> _Doc:
    # A grant record names what was handed out and to whom, never the key itself.
    doc = _Doc(f"KDC {grant.kind} grant {grant.id}")
    for name, value in zip(_GRANT_COLUMNS[1:], _grant_row(grant)[1:], strict=True):
        doc.field(name, value)
    return doc


def _grants(grants: Sequence[Any]) -> _Doc:
    doc = _Doc(f"KDC grants ({len(grants)})")
    doc.table("grants", _GRANT_COLUMNS, [_grant_row(g) for g in grants])
    return doc


def _compromise(report: Any) -> _Doc:
    doc = _Doc(f"Compromise response: {report.subject}")
    doc.field("reason", report.reason.value)
    doc.field("at", _when(report.at))
    doc.field("revoked", ", ".join(report.revoked))
    doc.field("rotated to", ", ".join(report.rotated))
    doc.field("recipients", ", ".join(report.recipients) or "none")
    doc.field("KDC revocation list", report.revocation_list_number)
    doc.field("CRL", report.crl)
    data_keys = dict(report.data_keys)
    doc.table(
        "exposed key versions",
        ["key version", "data keys generated under it"],
        ((v, data_keys.get(v, 0)) for v in report.exposed_key_versions),
    )
    doc.table(
        "grants of exposed material", _GRANT_COLUMNS, [_grant_row(g) for g in report.key_grants]
    )
    doc.table("exposed session tickets", _GRANT_COLUMNS, [_grant_row(g) for g in report.tickets])
    if report.not_exposed:
        doc.table(
            "not exposed (forward-secret replies)",
            _GRANT_COLUMNS,
            [_grant_row(g) for g in report.not_exposed],
        )
    issues = getattr(report, "data_key_issues", ())
    if issues:
        doc.table(
            "data keys under exposed versions",
            ["data key", "key version", "asked by", "issued"],
            [(i.id, i.key_id, i.actor, _when(i.issued_at)) for i in issues],
        )
    return doc


# -- dispatch ------------------------------------------------------------------------------------


def _builder(obj: object) -> Callable[[], _Doc] | None:
    # Imports are local: the views are rarely used and must not slow imports.
    from keymgmt._manager import KeyManager
    from keymgmt.audit import AuditEntry, AuditLog
    from keymgmt.model import KeyInfo, KeyVersionInfo

    if isinstance(obj, View):
        return obj._build
    if isinstance(obj, KeyManager):
        return lambda: _manager(obj)
    if isinstance(obj, KeyInfo):
        return lambda: _key_info(obj)
    if isinstance(obj, KeyVersionInfo):
        return lambda: _key_version(obj)
    if isinstance(obj, AuditEntry):
        return lambda: _audit_entry(obj)
    if isinstance(obj, AuditLog):
        return lambda: _audit_log(obj)
    if isinstance(obj, x509.Certificate):
        return lambda: _certificate(obj)
    if isinstance(obj, x509.CertificateRevocationList):
        return lambda: _crl(obj)
    if isinstance(obj, (list, tuple)) and not obj:
        # An empty listing (no grants yet, no principals): say so rather than refuse it.
        return lambda: _Doc(f"Empty {type(obj).__name__}: nothing to show")
    if isinstance(obj, (list, tuple)):
        if all(isinstance(c, x509.Certificate) for c in obj):
            return lambda: _chain(obj)
        if all(isinstance(e, AuditEntry) for e in obj):
            return lambda: _audit_entries(obj)
        kinds = {(type(o).__module__.startswith("keymgmt.kdc"), type(o).__name__) for o in obj}
        if kinds == {(True, "PrincipalInfo")}:
            return lambda: _principals(obj)
        if kinds == {(True, "GrantRecord")}:
            return lambda: _grants(obj)
    name = type(obj).__name__
    module = type(obj).__module__
    if module.startswith("keymgmt.pki"):
        if name == "VerifiedPath":
            return lambda: _verified_path(obj)
        if name == "IssuedCertificate":
            return lambda: _issued(obj)
        if name == "CertificateAuthority":
            return lambda: _authority(obj)
    if module.startswith("keymgmt.kdc"):
        if name == "CompromiseReport":
            return lambda: _compromise(obj)
        if name == "PrincipalInfo":
            return lambda: _principal(obj)
        if name == "GrantRecord":
            return lambda: _grant(obj)
    if module.startswith("keymgmt.exchange"):
        if name == "Session":
            return lambda: _session(obj)
        if name == "HandshakeComplete":
            return lambda: _session(obj.session)  # type: ignore[attr-defined]
    return None


def html(obj: object) -> str:
    """The HTML view of ``obj`` (escaped; metadata only).

    Raises:
        InvalidArgumentError: keymgmt has no view for this type.
    """
    return _require(obj)().html()


def text(obj: object) -> str:
    """The plain-text view of ``obj`` (metadata only).

    Raises:
        InvalidArgumentError: keymgmt has no view for this type.
    """
    return _require(obj)().text()


def pretty(obj: object, printer: Any, cycle: bool) -> None:
    """IPython's ``_repr_pretty_`` protocol: write :func:`text` to ``printer``."""
    if cycle:
        printer.text(repr(obj))
        return
    printer.text(text(obj))


def _require(obj: object) -> Callable[[], _Doc]:
    build = _builder(obj)
    if build is None:
        from keymgmt.errors import InvalidArgumentError

        raise InvalidArgumentError(f"keymgmt has no view for {type(obj).__name__}")
    return build


class View:
    """A displayable wrapper: Jupyter shows it as HTML, IPython and ``print`` as text.

    Get one from :func:`show`.
    """

    __slots__ = ("_build", "_obj")

    def __init__(self, obj: object) -> None:
        self._obj = obj
        self._build = _require(obj)

    def _repr_html_(self) -> str:
        return self._build().html()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self._build().text())

    def __str__(self) -> str:
        return self._build().text()

    def __repr__(self) -> str:
        return f"<keymgmt view of {type(self._obj).__name__}>"


def show(obj: object) -> View:
    """Wrap ``obj`` so Jupyter renders it as a table (and ``print`` as text).

    Works for everything with a keymgmt view, including types that are not
    keymgmt's: an ``x509.Certificate``, an ``x509.CertificateRevocationList``,
    a list of certificates (a chain, leaf first) and a list of audit entries
    (``km.audit.tail(10)``), of KDC principals (``km.kdc.list()``) and of KDC
    grants (``km.kdc.grants()``); an empty list shows as "nothing to show".
    keymgmt's own types (``KeyManager``,
    ``KeyInfo``, ``AuditEntry``, ``AuditLog``, ``VerifiedPath``,
    ``IssuedCertificate``, ``CertificateAuthority``, handshake ``Session``,
    the KDC's ``CompromiseReport``, ``PrincipalInfo`` and ``GrantRecord``)
    render by themselves.

    Raises:
        InvalidArgumentError: keymgmt has no view for this type.
    """
    return View(obj)
