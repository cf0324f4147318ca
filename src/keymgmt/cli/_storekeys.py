"""``keymgmt store ...``: the store key — status, rotate, re-seal, retire.

The store key seals every record; the master key (passphrase, key file,
HSM) only wraps it. After a suspected memory dump of a process holding the
store open: ``keymgmt store rotate`` (a new current store key), ``keymgmt
store reseal`` (every record moved to it, in audited batches, resumable),
then ``keymgmt store retire ID`` for each old key. See
:mod:`keymgmt.keyring._rotation`.
"""

from __future__ import annotations

import click

from keymgmt.cli._common import Settings, counting, emit, manager, pass_settings, table

__all__ = ["store"]


@click.group()
def store() -> None:
    """The store key: status, rotate, re-seal records, retire old keys."""


@store.command("status")
@pass_settings
def store_status(settings: Settings) -> None:
    """Show the store keys and how many records each seals (reads the whole store)."""
    with manager(settings) as km:
        status = km.store_key_status()
    rows = [
        {
            "id": info.key_id,
            "current": "yes" if info.current else "",
            "held": "yes" if info.held else "NO",
            "records": info.records,
        }
        for info in status.keys
    ]
    lines = table(rows, ["id", "current", "held", "records"])
    lines.append(f"{status.stale_records} record(s) under an older store key")
    emit(settings, status.as_dict(), lines)


@store.command("rotate")
@pass_settings
def store_rotate(settings: Settings) -> None:
    """Make a new store key current (old keys keep unsealing); then run reseal."""
    with manager(settings) as km:
        key_id = km.rotate_store_key()
    previous = key_id - 1  # the current key is always the highest id
    emit(
        settings,
        {"key_id": key_id, "previous": previous},
        f"store key {key_id} is current (was {previous}); run 'keymgmt store reseal' next",
    )


@store.command("reseal")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=100,
    show_default=True,
    help="Records per transaction.",
)
@pass_settings
def store_reseal(settings: Settings, batch_size: int) -> None:
    """Re-seal every record under an older store key (audited batches; resumable)."""
    with manager(settings) as km, counting(settings, "re-sealing") as bar:
        report = km.reseal(batch_size=batch_size, progress=bar)
    text = f"re-sealed {report.resealed} record(s) under store key {report.key_id}"
    if report.remaining:
        text += f"; {report.remaining} left (written meanwhile: run reseal again)"
    if report.unreadable:
        text += f"; {report.unreadable} name a store key the store no longer holds"
    emit(settings, report.as_dict(), text)


@store.command("retire")
@click.argument("key_id", type=click.IntRange(min=1))
@pass_settings
def store_retire(settings: Settings, key_id: int) -> None:
    """Destroy old store key KEY_ID; refused while any record still uses it."""
    with manager(settings) as km:
        km.retire_store_key(key_id)
    emit(settings, {"retired": key_id}, f"store key {key_id} retired")
