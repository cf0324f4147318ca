"""``keymgmt ca ...`` and ``keymgmt cert verify|show``: the PKI from the command line.

Private keys made here (``ca issue --new-key``) are written only encrypted,
under a passphrase read from ``--key-passphrase-file`` or the
``KEYMGMT_KEY_PASSPHRASE`` environment variable; CA private keys never leave
the store.
"""

from __future__ import annotations

import base64
import datetime as _dt
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from cryptography import x509

from keymgmt.cli._common import (
    OutputPath,
    Settings,
    counting,
    emit,
    manager,
    pass_settings,
    read_input,
    table,
)
from keymgmt.clock import ensure_aware
from keymgmt.errors import InvalidArgumentError
from keymgmt.pki import (
    CA_KEY_TYPES,
    PROFILES,
    CertificateAuthority,
    Encoding,
    Purpose,
    RevocationPolicy,
    export_certificate,
    export_chain,
    export_crl,
    export_pkcs12,
    export_private_key,
    generate_key,
    load_certificate,
    load_certificates,
    load_crl,
)
from keymgmt.pki._export import check_passphrase
from keymgmt.pki._parse import MAX_INPUT
from keymgmt.revocation import RevocationReason

__all__ = ["ca", "cert"]

_IN = click.Path(path_type=Path, dir_okay=False, exists=True)
_OUT = OutputPath()
_KEY_TYPES = click.Choice([a.value for a in CA_KEY_TYPES])


def _read(path: Path) -> bytes:
    return read_input(path, MAX_INPUT)


def _write(path: Path | None, data: bytes, *, secret: bool = False) -> None:
    if path is None:
        settings = click.get_current_context().find_object(Settings)
        if settings is not None and settings.output == "json":
            # One JSON document for --format json: PEM as text, DER in base64.
            if data.isascii():
                emit(settings, {"pem": data.decode("ascii")})
            else:
                emit(settings, {"der_base64": base64.b64encode(data).decode("ascii")})
            return
        click.echo(data.decode("ascii") if data.isascii() else data.hex(), nl=False)
        return
    try:
        if secret:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        else:
            path.write_bytes(data)
    except OSError as exc:
        raise InvalidArgumentError(f"cannot write {path}: {exc.strerror}") from None


class _KeyFile:
    """A private key file's name, held from before issuance until the key is written.

    Without ``overwrite`` the name is created exclusively (mode 0600) at
    once: never through an existing name (the file may be the only copy of
    the key of a certificate in use, and a symlink planted there would send
    the key elsewhere), and no other process can take the name while the
    certificate is issued (which would leave a certificate whose key was
    never written). With ``overwrite`` a temporary file beside it is made
    at once and renamed over the name at the end (a symlink there is
    replaced, not followed). The data is synced before it counts as written.

    Raises:
        InvalidArgumentError: it exists (without ``overwrite``), or it cannot
            be created.
    """

    def __init__(self, path: Path, *, overwrite: bool) -> None:
        self.path = path
        self._temporary: str | None = None
        try:
            if overwrite:
                self._fd, self._temporary = tempfile.mkstemp(
                    dir=path.absolute().parent, prefix=f".{path.name}."
                )
            else:
                self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise InvalidArgumentError(_exists(path)) from None
        except OSError as exc:
            raise InvalidArgumentError(f"cannot write {path}: {exc.strerror}") from None
        self._identity = os.fstat(self._fd)

    def write(self, data: bytes) -> None:
        """Write ``data`` and put the file at its name.

        Raises:
            InvalidArgumentError: it cannot be written (nothing is left behind).
        """
        try:
            with os.fdopen(self._fd, "wb") as handle:
                self._fd = -1
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if self._temporary is not None:
                os.replace(self._temporary, self.path)
                self._temporary = None
        except OSError as exc:
            self.abandon()
            raise InvalidArgumentError(f"cannot write {self.path}: {exc.strerror}") from None

    def abandon(self) -> None:
        """Remove what was made for the key (the name only if it is still ours)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._temporary is not None:
            Path(self._temporary).unlink(missing_ok=True)
            self._temporary = None
            return
        try:
            now = os.lstat(self.path)
        except OSError:
            return
        if (now.st_dev, now.st_ino) == (self._identity.st_dev, self._identity.st_ino):
            self.path.unlink(missing_ok=True)


def _one_file_each(paths: Sequence[tuple[str, Path | None]]) -> None:
    """Refuse two output options naming one file (the last written would replace the key).

    Raises:
        click.UsageError: two options resolve to the same file.
    """
    seen: dict[Path, str] = {}
    for option, path in paths:
        if path is None:
            continue
        resolved = path.resolve()
        if resolved in seen:
            raise click.UsageError(
                f"{seen[resolved]} and {option} are one file ({path}): the one written last "
                "would replace the other (the private key may be lost)"
            )
        seen[resolved] = option


def _exists(path: Path) -> str:
    return (
        f"{path} exists (it may be the only copy of a private key); give --overwrite to replace it"
    )


def _key_passphrase(path: Path | None) -> str:
    if path is not None:
        text = _read(path).decode("utf-8", "replace").rstrip("\r\n")
    else:
        text = os.environ.get("KEYMGMT_KEY_PASSPHRASE", "")
    if not text:
        raise InvalidArgumentError(
            "a new private key is written encrypted: give --key-passphrase-file "
            "or set KEYMGMT_KEY_PASSPHRASE"
        )
    return text


def _describe(cert: x509.Certificate) -> dict[str, Any]:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca: bool | None = bc.ca
    except x509.ExtensionNotFound:
        is_ca = None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n.value) for n in san]
    except x509.ExtensionNotFound:
        names = []
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": f"{cert.serial_number:x}",
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "ca": is_ca,
        "names": names,
        "key": type(cert.public_key()).__name__.removeprefix("_"),
    }


def _ca_row(authority: CertificateAuthority) -> dict[str, Any]:
    return {
        "name": authority.name,
        "parent": authority.parent or "-",
        "key_type": authority.key_type.value,
        "subject": authority.certificate.subject.rfc4514_string(),
        "not_after": authority.certificate.not_valid_after_utc.isoformat(),
        "key": authority.key_ref,
    }


def _common_ca_options(fn: Any) -> Any:
    for option in reversed(
        [
            click.option("--subject", help="RFC 4514 subject or a common name (default CN=NAME)."),
            click.option(
                "--key-type",
                type=_KEY_TYPES,
                default="ecdsa-p256",
                show_default=True,
                help="CA key algorithm.",
            ),
            click.option("--validity-days", type=click.IntRange(1), help="Lifetime in days."),
            click.option("--permit", multiple=True, help="Permitted name constraint (repeat)."),
            click.option("--exclude", multiple=True, help="Excluded name constraint (repeat)."),
            click.option("--crl-url", help="CRL distribution point for what this CA issues."),
            click.option("--ocsp-url", help="OCSP responder URL for what this CA issues."),
        ]
    ):
        fn = option(fn)
    return fn


def _days(value: int | None) -> _dt.timedelta | None:
    return None if value is None else _timedelta(days=value)


def _timedelta(**amount: int) -> _dt.timedelta:
    try:
        return _dt.timedelta(**amount)
    except OverflowError:
        (unit, value), *_ = amount.items()
        raise InvalidArgumentError(f"{value} {unit} is too long a time") from None


@click.group()
def ca() -> None:
    """Certificate authorities: create, issue, revoke, CRLs, export."""


@ca.command("create-root")
@click.argument("name")
@_common_ca_options
@click.option("--path-length", type=click.IntRange(0), help="pathLenConstraint (default: none).")
@pass_settings
def ca_create_root(
    settings: Settings,
    name: str,
    subject: str | None,
    key_type: str,
    validity_days: int | None,
    permit: Sequence[str],
    exclude: Sequence[str],
    crl_url: str | None,
    ocsp_url: str | None,
    path_length: int | None,
) -> None:
    """Create a self-signed root CA NAME (its key stays sealed in the store)."""
    with manager(settings) as km:
        authority = km.pki.create_root_ca(
            name,
            subject=subject,
            key_type=key_type,
            validity=_days(validity_days),
            path_length=path_length,
            permitted_names=permit,
            excluded_names=exclude,
            crl_url=crl_url,
            ocsp_url=ocsp_url,
        )
        row = _ca_row(authority)
    emit(settings, row, f"created root CA {name} ({row['key_type']}, {row['subject']})")


@ca.command("create-intermediate")
@click.argument("name")
@click.option("--parent", required=True, help="The CA that signs the new one.")
@_common_ca_options
@click.option(
    "--path-length", type=click.IntRange(0), default=0, show_default=True, help="pathLen."
)
@pass_settings
def ca_create_intermediate(
    settings: Settings,
    name: str,
    parent: str,
    subject: str | None,
    key_type: str,
    validity_days: int | None,
    permit: Sequence[str],
    exclude: Sequence[str],
    crl_url: str | None,
    ocsp_url: str | None,
    path_length: int,
) -> None:
    """Create an intermediate CA NAME signed by --parent."""
    with manager(settings) as km:
        authority = km.pki.ca(parent).create_intermediate(
            name,
            subject=subject,
            key_type=key_type,
            validity=_days(validity_days),
            path_length=path_length,
            permitted_names=permit,
            excluded_names=exclude,
            crl_url=crl_url,
            ocsp_url=ocsp_url,
        )
        row = _ca_row(authority)
    emit(settings, row, f"created intermediate CA {name} under {parent}")


@ca.command("list")
@pass_settings
def ca_list(settings: Settings) -> None:
    """List the store's CAs."""
    with manager(settings) as km:
        rows = [_ca_row(c) for c in km.pki.list_cas()]
    emit(settings, rows, table(rows, ["name", "parent", "key_type", "subject", "not_after"]))


@ca.command("export")
@click.argument("name")
@click.option("--chain", is_flag=True, help="The CA certificate and its parents (PEM bundle).")
@click.option("--der", is_flag=True, help="DER instead of PEM (single certificate only).")
@click.option("--out", type=_OUT, help="Write here instead of standard output.")
@pass_settings
def ca_export(settings: Settings, name: str, chain: bool, der: bool, out: Path | None) -> None:
    """Export CA NAME's certificate (or chain). Its private key never leaves the store."""
    if chain and der:  # a chain is a PEM bundle: --der was silently ignored
        raise click.UsageError("--der exports one certificate; a --chain is a PEM bundle")
    with manager(settings) as km:
        authority = km.pki.ca(name)
        if chain:
            data = export_chain(authority.chain)
        else:
            data = export_certificate(authority.certificate, Encoding.DER if der else Encoding.PEM)
    _write(out, data)


@ca.command("issue")
@click.argument("name")
@click.option("--csr", type=_IN, help="PKCS#10 request (PEM or DER).")
@click.option("--new-key", is_flag=True, help="Generate the subject's key pair here.")
@click.option(
    "--key-type",
    type=_KEY_TYPES,
    default="ecdsa-p256",
    show_default=True,
    help="With --new-key: the key algorithm.",
)
@click.option("--subject", help="Subject (required with --new-key; overrides the CSR's).")
@click.option("--san", "names", multiple=True, help="Subject alternative name (repeat).")
@click.option(
    "--profile",
    type=click.Choice(sorted(p for p, v in PROFILES.items() if not v.is_ca)),
    default="tls-server",
    show_default=True,
)
@click.option("--validity-days", type=click.IntRange(1), help="Lifetime (clipped to the CA's).")
@click.option("--out", type=_OUT, help="Certificate + chain (PEM); default standard output.")
@click.option("--key-out", type=_OUT, help="With --new-key: encrypted private key (PKCS#8 PEM).")
@click.option("--p12-out", type=_OUT, help="With --new-key: encrypted PKCS#12 bundle.")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an existing --key-out/--p12-out file (else refused).",
)
@click.option(
    "--key-passphrase-file",
    type=_IN,
    help="Passphrase for --key-out/--p12-out (else KEYMGMT_KEY_PASSPHRASE).",
)
@pass_settings
def ca_issue(
    settings: Settings,
    name: str,
    csr: Path | None,
    new_key: bool,
    key_type: str,
    subject: str | None,
    names: Sequence[str],
    profile: str,
    validity_days: int | None,
    out: Path | None,
    key_out: Path | None,
    p12_out: Path | None,
    overwrite: bool,
    key_passphrase_file: Path | None,
) -> None:
    """Issue a certificate from CA NAME, from --csr or for a --new-key."""
    if (csr is None) == (not new_key):
        raise click.UsageError("give exactly one of --csr or --new-key")
    if new_key and key_out is None and p12_out is None:
        raise click.UsageError("--new-key needs --key-out or --p12-out (the key is not kept)")
    passphrase = _key_passphrase(key_passphrase_file) if new_key else ""
    if new_key:  # refused before a certificate is issued for a key never written
        check_passphrase(passphrase, pkcs8=key_out is not None, pkcs12=p12_out is not None)
    for path in (out, key_out, p12_out):
        if path is not None and not path.absolute().parent.is_dir():
            raise InvalidArgumentError(f"cannot write {path}: no such directory")
    if new_key:
        _one_file_each([("--out", out), ("--key-out", key_out), ("--p12-out", p12_out)])
    # The key files' names are taken before the certificate is issued: a name
    # that cannot be had is refused with nothing issued.
    files: dict[str, _KeyFile] = {}
    try:
        for option, path in (("key", key_out), ("p12", p12_out)) if new_key else ():
            if path is not None:
                files[option] = _KeyFile(path, overwrite=overwrite)
        with manager(settings) as km:
            authority = km.pki.ca(name)
            if csr is not None:
                cert = authority.issue(
                    _read(csr),
                    subject=subject,
                    names=list(names) or None,
                    profile=profile,
                    validity=_days(validity_days),
                )
                key = None
            else:
                key = generate_key(key_type)
                cert = authority.issue(
                    public_key=key.public_key(),
                    subject=subject,
                    names=list(names),
                    profile=profile,
                    validity=_days(validity_days),
                )
            chain = authority.chain
        if key is not None:
            if "key" in files:
                files.pop("key").write(export_private_key(key, passphrase))
            if "p12" in files:
                bundle = export_pkcs12(
                    name=cert.subject.rfc4514_string(),
                    key=key,
                    certificate=cert,
                    chain=chain,
                    passphrase=passphrase,
                )
                files.pop("p12").write(bundle)
    finally:
        for unused in files.values():
            unused.abandon()
    pem = export_chain([cert, *chain[:-1]])
    if out is not None or settings.output != "json":
        _write(out, pem)
    if settings.output == "json" or out is not None:
        emit(settings, _describe(cert), f"issued {cert.serial_number:x} to {out}")


@ca.command("issued")
@click.argument("name")
@pass_settings
def ca_issued(settings: Settings, name: str) -> None:
    """List what CA NAME issued, with revocation status."""
    with manager(settings) as km:
        rows = [
            {
                "serial": i.serial_hex,
                "subject": i.subject,
                "profile": i.profile,
                "not_after": i.not_after.isoformat(),
                "revoked": i.revocation.reason.value if i.revocation else "-",
            }
            for i in km.pki.ca(name).issued()
        ]
    emit(settings, rows, table(rows, ["serial", "subject", "profile", "not_after", "revoked"]))


@ca.command("revoke")
@click.argument("name")
@click.argument("serial")
@click.option(
    "--reason",
    type=click.Choice([r.value for r in RevocationReason]),
    default="unspecified",
    show_default=True,
)
@click.option("--invalidity-date", help="ISO 8601 time the key was (believed) compromised.")
@pass_settings
def ca_revoke(
    settings: Settings, name: str, serial: str, reason: str, invalidity_date: str | None
) -> None:
    """Revoke certificate SERIAL (hex) issued by CA NAME (expired ones too)."""
    when = _parse_time(invalidity_date, "--invalidity-date") if invalidity_date else None
    with manager(settings) as km:
        revocation = km.pki.ca(name).revoke(serial, reason, invalidity_date=when)
    emit(
        settings,
        {
            "subject": revocation.subject,
            "reason": revocation.reason.value,
            "revoked_at": revocation.revoked_at.isoformat(),
        },
        f"revoked {revocation.subject} ({revocation.reason.value})",
    )


@ca.command("crl")
@click.argument("name")
@click.option("--delta", is_flag=True, help="A delta CRL against the last complete CRL.")
@click.option("--next-update-hours", type=click.IntRange(1), default=24, show_default=True)
@click.option("--force", is_flag=True, help="Sign a new CRL even if nothing changed.")
@click.option("--der", is_flag=True, help="DER instead of PEM.")
@click.option("--out", type=_OUT, help="Write here instead of standard output.")
@pass_settings
def ca_crl(
    settings: Settings,
    name: str,
    delta: bool,
    next_update_hours: int,
    force: bool,
    der: bool,
    out: Path | None,
) -> None:
    """Print (or write) CA NAME's current CRL."""
    with manager(settings) as km, counting(settings, f"CRL of {name}") as bar:
        crl = km.pki.ca(name).crl(
            delta=delta,
            next_update=_timedelta(hours=next_update_hours),
            force=force,
            progress=bar,
        )
    _write(out, export_crl(crl, Encoding.DER if der else Encoding.PEM))


@ca.command("ocsp")
@click.argument("name")
@click.option("--request", "request_file", type=_IN, required=True, help="DER OCSP request.")
@click.option("--out", type=_OUT, required=True, help="Where to write the DER response.")
@pass_settings
def ca_ocsp(settings: Settings, name: str, request_file: Path, out: Path) -> None:
    """Answer a DER OCSP request about a certificate of CA NAME."""
    with manager(settings) as km:
        response = km.pki.ca(name).ocsp_respond(_read(request_file))
    _write(out, response)


@click.group()
def cert() -> None:
    """Inspect and verify certificates."""


@cert.command("show")
@click.argument("path", type=_IN)
@pass_settings
def cert_show(settings: Settings, path: Path) -> None:
    """Show a certificate (PEM or DER; the first of a bundle)."""
    emit(settings, _describe(load_certificate(_first(_read(path)))))


def _first(data: bytes) -> bytes:
    certs = load_certificates(data)
    return export_certificate(certs[0], Encoding.DER)


@cert.command("verify")
@click.argument("path", type=_IN)
@click.option("--chain", type=_IN, help="Untrusted intermediates (PEM bundle).")
@click.option("--ca-file", type=_IN, help="Trust anchors (PEM bundle); default: the store's roots.")
@click.option("--crl", "crl_files", type=_IN, multiple=True, help="A CRL to use (repeat).")
@click.option("--ocsp", "ocsp_files", type=_IN, multiple=True, help="A DER OCSP response.")
@click.option(
    "--purpose", type=click.Choice([p.value for p in Purpose]), default="any", show_default=True
)
@click.option("--name", help="Expected identity (DNS name, IP, or client name).")
@click.option("--at", "at_text", help="Validation time, ISO 8601 (default: now).")
@click.option("--soft-fail", is_flag=True, help="Accept unknown revocation status.")
@pass_settings
def cert_verify(
    settings: Settings,
    path: Path,
    chain: Path | None,
    ca_file: Path | None,
    crl_files: Sequence[Path],
    ocsp_files: Sequence[Path],
    purpose: str,
    name: str | None,
    at_text: str | None,
    soft_fail: bool,
) -> None:
    """Verify a certificate: path, usage, name and revocation of every certificate."""
    leaf, *extra = load_certificates(_read(path))
    intermediates = extra + (load_certificates(_read(chain)) if chain else [])
    anchors = load_certificates(_read(ca_file)) if ca_file else None
    crls = [load_crl(_read(p)) for p in crl_files]
    responses = [_read(p) for p in ocsp_files]
    at = _parse_time(at_text, "--at") if at_text else None
    with manager(settings) as km:
        result = km.pki.verify(
            leaf,
            intermediates=intermediates,
            trust_anchors=anchors,
            crls=crls,
            ocsp_responses=responses,
            at=at,
            purpose=purpose,
            name=name,
            policy=RevocationPolicy.SOFT_FAIL if soft_fail else RevocationPolicy.REQUIRE,
        )
    emit(
        settings,
        {
            "ok": True,
            "subject": leaf.subject.rfc4514_string(),
            "chain": [c.subject.rfc4514_string() for c in result.chain],
            "revocation": [s.value for s in result.revocation],
            "engine": result.engine,
        },
        f"OK: {leaf.subject.rfc4514_string()} "
        f"(chain of {len(result.chain)}, revocation: "
        f"{', '.join(s.value for s in result.revocation) or 'n/a'})",
    )


def _parse_time(text: str, what: str) -> _dt.datetime:
    try:
        value = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgumentError(f"{what}: not an ISO 8601 time: {text!r}") from None
    if value.tzinfo is None:
        raise InvalidArgumentError(f"{what}: give a time zone (e.g. 2030-01-01T00:00:00+00:00)")
    return ensure_aware(value, what)
