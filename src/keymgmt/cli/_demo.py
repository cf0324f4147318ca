"""``keymgmt demo``: a walk through what keymgmt does, on a throwaway store.

Each part of keymgmt contributes one step: a function that takes the
:class:`Demo` and prints what it does and what that proves. Steps run in
the order of :data:`STEPS`.
"""

from __future__ import annotations

import base64
import shlex
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import attrs
import click

from keymgmt._manager import KeyManager
from keymgmt.errors import KeyMgmtError, WrongPassphraseError
from keymgmt.keyring import KdfProfile

__all__ = ["STEPS", "Demo", "demo"]


@attrs.define
class Demo:
    """What each demo step gets: the manager, the store path, and printing helpers."""

    km: KeyManager
    path: Path
    passphrase: str
    workdir: Path

    def say(self, text: str) -> None:
        """Print a line of narration."""
        click.echo(f"  {text}")

    def proves(self, text: str) -> None:
        """Print what a step has just proved."""
        click.echo(click.style(f"  ✓ {text}", fg="green"))

    def store_bytes(self) -> bytes:
        """The store file and its SQLite companions (WAL, shared memory), concatenated."""
        return b"".join(p.read_bytes() for p in sorted(self.path.parent.glob(self.path.name + "*")))

    def leaked_in_store(self, secrets: Iterable[bytes]) -> list[bytes]:
        """The ``secrets`` found in the store files raw, as hex or as base64."""
        raw = self.store_bytes()
        return [
            s
            for s in secrets
            for form in (s, s.hex().encode(), base64.urlsafe_b64encode(s).rstrip(b"="))
            if form in raw
        ]

    def expect_failure(
        self, what: str, fn: Callable[[], object], error: type[KeyMgmtError]
    ) -> None:
        """Run ``fn``, which must raise ``error``; print that it was refused."""
        try:
            fn()
        except error as exc:
            self.proves(f"{what}: refused ({type(exc).__name__}: {exc.message})")
            return
        raise AssertionError(f"demo step expected {error.__name__} for: {what}")


def step_store(d: Demo) -> None:
    """Sealed storage, master key, audit chain."""
    mode = stat.S_IMODE(d.path.stat().st_mode)
    d.say(f"A store was created at {d.path} (SQLite, WAL, mode {mode:04o}).")
    d.say("Every record in it is sealed under a store key that the passphrase wraps.")
    # The database and its write-ahead log, searched for the store key and the
    # passphrase in the forms a leak would take.
    raw = d.store_bytes()
    secrets = [d.passphrase.encode(), *(k.reveal() for k in d.km._store.keyring._keys.values())]
    if d.leaked_in_store(secrets) or mode != 0o600:
        raise AssertionError("demo: key material found in the store file, or wrong mode")
    d.proves(
        f"the files ({len(raw)} bytes) hold neither the store key nor the passphrase, "
        "in raw, hex or base64 form"
    )
    d.expect_failure(
        "opening with the wrong passphrase",
        lambda: KeyManager.open(d.path, passphrase="wrong", create=False),
        WrongPassphraseError,
    )
    report = d.km.audit.verify()
    d.proves(f"the audit chain verifies ({report.entries} entries, sealed head)")


def _step_keys(d: Demo) -> None:
    """Named symmetric keys: AEAD with contexts, rotation, envelope, compromise, Fernet."""
    from keymgmt.keys._demo_step import step_keys

    step_keys(d)


def _step_asymmetric(d: Demo) -> None:
    """Key pairs: signing, public-key encryption, verification without the store."""
    from keymgmt.cli._demo_asym import step_asymmetric

    step_asymmetric(d)


def _step_exchange(d: Demo) -> None:
    """Mutually authenticated handshake; MITM, replay, tampering, revocation refused."""
    from keymgmt.exchange._demo_step import step_exchange

    step_exchange(d)


def _step_pki(d: Demo) -> None:
    """CA hierarchy, CSR issuance, verification, revocation via CRL and OCSP."""
    from keymgmt.pki._demo_step import step_pki

    step_pki(d)


def _step_kdc(d: Demo) -> None:
    """The seed end to end through the key distribution center."""
    from keymgmt.kdc._demo_step import step_kdc

    step_kdc(d)


STEPS: list[tuple[str, Callable[[Demo], None]]] = [
    ("Sealed store and audit log", step_store),
    ("Symmetric keys: encryption, rotation, data keys, compromise", _step_keys),
    ("Key pairs: signing and public-key encryption, verified without the store", _step_asymmetric),
    ("Key exchange: authenticated handshake, attacks refused", _step_exchange),
    ("PKI: CAs, issuance from a CSR, revocation in verify, CRL and OCSP", _step_pki),
    ("Key distribution: Client A, Client B, tickets, compromise", _step_kdc),
]


@click.command()
@click.option(
    "--keep",
    type=click.Path(path_type=Path, file_okay=False),
    help=(
        "Keep the demo store in this directory instead of a temporary one "
        "(its passphrase: correct horse battery staple)."
    ),
)
def demo(keep: Path | None) -> None:
    """Walk through keymgmt on a throwaway SQLite store, saying what each step proves."""
    with tempfile.TemporaryDirectory(prefix="keymgmt-demo-") as tmp:
        workdir = keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / "demo.db"
        if path.exists():  # an earlier --keep: its keys and CAs would clash with this walk
            raise click.ClickException(
                f"{path} exists (an earlier demo?): give --keep an empty directory"
            )
        passphrase = "correct horse battery staple"
        # The demo is about behaviour, not KDF cost: cheap, clearly labelled parameters.
        with KeyManager.open(
            path, passphrase=passphrase, kdf_profile=KdfProfile.TESTING_ONLY_INSECURE
        ) as km:
            d = Demo(km=km, path=path, passphrase=passphrase, workdir=workdir)
            for number, (title, step) in enumerate(STEPS, 1):
                click.echo(click.style(f"\n[{number}/{len(STEPS)}] {title}", bold=True))
                step(d)
        click.echo(click.style("\nAll demo steps passed.", bold=True))
        if keep is not None:
            # Kept to be explored: say how to open it (its passphrase is no secret).
            click.echo(
                f"The store is kept in {path} (test-only KDF parameters: never for real "
                f"data). Explore it with:\n"
                f"  KEYMGMT_PASSPHRASE='{passphrase}' keymgmt --store {shlex.quote(str(path))} "
                "key list"
            )
