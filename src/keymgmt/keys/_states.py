"""Key version states: the one transition table and what each operation accepts.

A key version moves through the NIST SP 800-57 states (see
:class:`~keymgmt.model.KeyState`)::

    pre-active ──> active ──> deactivated ──> destroyed
        │   \\        │  ^         │               │
        │    \\       v  │         v               v
        │     \\─> suspended ─> compromised ─> destroyed-compromised
        └──────────────────────────^
         (and pre-active ──> destroyed, pre-active ──> deactivated)

A pre-active version that is rotated away or revoked for a reason other
than compromise becomes deactivated (SP 800-57 has no such transition; it
would destroy the unused key instead). keymgmt keeps the material, so a
message already encrypted to a pre-active key pair's public key still
decrypts, and the version never activates by its date.

Stored state is not the whole story: dates move a version on by themselves.
:func:`effective_state` combines the stored state with the clock (activation
date reached, key expiry passed, scheduled destruction due) and with the
revocation registry (a version revoked there directly, without the key store,
counts as compromised or deactivated by its reason). Whenever the key store
writes a version record it writes the effective state, so the stored state
catches up lazily.

Each operation declares the states it accepts in :data:`ACCEPTS`; callers
check with :func:`require`, which raises a typed error naming key, version
and state.
"""

from __future__ import annotations

import datetime as _dt
import enum
from typing import Final

from keymgmt.errors import DestroyedKeyError, KeyStateError, RevokedError
from keymgmt.model import KeyState

__all__ = ["ACCEPTS", "TRANSITIONS", "Operation", "can_transition", "effective_state", "require"]

_S = KeyState

#: The allowed transitions, and the only place they are written down.
TRANSITIONS: Final[dict[KeyState, frozenset[KeyState]]] = {
    # pre-active -> deactivated: a version superseded by a rotation or revoked
    # (for a reason other than compromise) before its activation date; it
    # must never activate, as no other superseded or revoked version does.
    _S.PRE_ACTIVE: frozenset({_S.ACTIVE, _S.DEACTIVATED, _S.COMPROMISED, _S.DESTROYED}),
    _S.ACTIVE: frozenset({_S.SUSPENDED, _S.DEACTIVATED, _S.COMPROMISED}),
    _S.SUSPENDED: frozenset({_S.ACTIVE, _S.DEACTIVATED, _S.COMPROMISED}),
    _S.DEACTIVATED: frozenset({_S.COMPROMISED, _S.DESTROYED}),
    _S.COMPROMISED: frozenset({_S.DESTROYED_COMPROMISED}),
    _S.DESTROYED: frozenset({_S.DESTROYED_COMPROMISED}),
    _S.DESTROYED_COMPROMISED: frozenset(),
}


class Operation(enum.StrEnum):
    """What can be done with a key version."""

    PROTECT = "protect"  # encrypt, sign, generate a data key, re-wrap target
    PROCESS = "process"  # decrypt, verify, unwrap a data key, re-wrap source
    EXPORT = "export"  # wrapped or raw export of the material
    SCHEDULE_DESTRUCTION = "schedule-destruction"


#: The states each operation accepts. Processing with a compromised version
#: also needs the caller's explicit ``allow_compromised=True``.
ACCEPTS: Final[dict[Operation, frozenset[KeyState]]] = {
    Operation.PROTECT: frozenset({_S.ACTIVE}),
    Operation.PROCESS: frozenset({_S.ACTIVE, _S.SUSPENDED, _S.DEACTIVATED, _S.COMPROMISED}),
    Operation.EXPORT: frozenset({_S.ACTIVE, _S.SUSPENDED, _S.DEACTIVATED}),
    Operation.SCHEDULE_DESTRUCTION: frozenset({_S.PRE_ACTIVE, _S.DEACTIVATED, _S.COMPROMISED}),
}


def can_transition(current: KeyState, target: KeyState) -> bool:
    """Whether the table allows ``current`` -> ``target`` (staying put is allowed)."""
    return current is target or target in TRANSITIONS[current]


def effective_state(
    stored: KeyState,
    *,
    now: _dt.datetime,
    activation_date: _dt.datetime,
    expiry_date: _dt.datetime | None,
    destroy_at: _dt.datetime | None,
    revoked_reason_is_compromise: bool | None,
) -> KeyState:
    """The state a version is in at ``now``, given its dates and any revocation.

    Args:
        stored: the state last written.
        now: the current time.
        activation_date: when a pre-active version becomes active.
        expiry_date: when active or suspended versions become deactivated.
        destroy_at: when a scheduled destruction takes effect.
        revoked_reason_is_compromise: None when the registry has no
            revocation for this version; else whether its reason is a compromise.

    Returns:
        The effective :class:`KeyState`.
    """
    state = stored
    if state is _S.PRE_ACTIVE and now >= activation_date:
        state = _S.ACTIVE
    if revoked_reason_is_compromise is not None and not state.is_destroyed:
        if revoked_reason_is_compromise:
            state = _S.COMPROMISED
        elif state in (_S.PRE_ACTIVE, _S.ACTIVE, _S.SUSPENDED):
            state = _S.DEACTIVATED
    if expiry_date is not None and now >= expiry_date and state in (_S.ACTIVE, _S.SUSPENDED):
        state = _S.DEACTIVATED
    if destroy_at is not None and now >= destroy_at:
        if state is _S.COMPROMISED:
            state = _S.DESTROYED_COMPROMISED
        elif not state.is_destroyed:
            state = _S.DESTROYED
    return state


def require(
    operation: Operation,
    state: KeyState,
    *,
    key_name: str,
    version: int,
    allow_compromised: bool = False,
    reason: str | None = None,
) -> None:
    """Raise unless ``operation`` is allowed for a version in ``state``.

    Raises:
        DestroyedKeyError: the version's material has been destroyed.
        RevokedError: the version is compromised (and compromised use was not
            explicitly allowed), or revoked for ``reason`` when protecting.
        KeyStateError: any other state the operation does not accept.
    """
    if state in ACCEPTS[operation] and (state is not _S.COMPROMISED or allow_compromised):
        return
    where = f"key {key_name!r} version {version}"
    attributes = {"key_name": key_name, "version": version, "state": state.value}
    if state.is_destroyed:
        raise DestroyedKeyError(f"{where} was destroyed ({state.value})", **attributes)
    if state is _S.COMPROMISED:
        hint = (
            "; pass allow_compromised=True to decrypt or verify with it (for migration)"
            if operation is Operation.PROCESS
            else ""
        )
        raise RevokedError(
            f"{where} is compromised{hint}", reason=reason or "key-compromise", **attributes
        )
    if reason is not None and state is _S.DEACTIVATED:
        raise RevokedError(
            f"{where} is revoked ({reason}) and cannot {operation.value}",
            reason=reason,
            **attributes,
        )
    raise KeyStateError(f"{where} is {state.value} and cannot {operation.value}", **attributes)
