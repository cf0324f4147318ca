"""Review 5 of the keys part: regressions for defects found in session 5's keys changes."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from keymgmt import KeyManager, KeyState, pem
from keymgmt.errors import InvalidArgumentError, RevokedError
from keymgmt.public import Signature
from keymgmt.revocation import SubjectKind

# -- a whole-key compromise in the registry beats a version's milder revocation ------


def _superseded_then_whole_key_compromised(km: KeyManager, name: str, algorithm: str) -> None:
    km.keys.create(name, algorithm)
    km.keys.rotate(name)
    km.keys.revoke(name, 1, reason="superseded")
    km.revocation.revoke(SubjectKind.KEY, name, "key-compromise")


def test_public_key_refuses_a_superseded_version_of_a_key_compromised_as_a_whole(
    km: KeyManager,
) -> None:
    _superseded_then_whole_key_compromised(km, "signing", "ed25519")
    with pytest.raises(RevokedError) as caught:
        km.public_key("signing", 1)
    assert caught.value.reason == "key-compromise"  # type: ignore[attr-defined]


def test_decrypt_refuses_a_superseded_version_of_a_key_compromised_as_a_whole(
    km: KeyManager,
) -> None:
    km.keys.create("payments")
    ciphertext = km.encrypt("payments", b"x")
    km.keys.rotate("payments")
    km.keys.revoke("payments", 1, reason="superseded")
    km.revocation.revoke(SubjectKind.KEY, "payments", "key-compromise")
    with pytest.raises(RevokedError):
        km.decrypt(ciphertext)
    assert km.decrypt(ciphertext, allow_compromised=True) == b"x"


def test_forensic_public_key_reports_the_whole_key_compromise(km: KeyManager) -> None:
    _superseded_then_whole_key_compromised(km, "signing", "ed25519")
    forensic = km.keys.forensic_public_key("signing", 1)
    assert (forensic.state, forensic.revocation_reason) == (
        KeyState.COMPROMISED,
        "key-compromise",
    )


def test_key_info_shows_a_superseded_version_of_a_compromised_key_as_compromised(
    km: KeyManager,
) -> None:
    _superseded_then_whole_key_compromised(km, "payments", "aes-256-gcm")
    assert km.keys.get("payments").versions[0].state is KeyState.COMPROMISED


# -- Signature.decode of a memoryview is sliced in bytes --------------------------------


@pytest.mark.parametrize("shape", ["wide items", "two dimensions"])
def test_signature_decode_of_a_reshaped_memoryview_gives_the_raw_signature(
    km: KeyManager, shape: str
) -> None:
    km.keys.create("sig2", "ed25519")  # an even-length envelope (86 bytes)
    signature = km.sign("sig2", b"m")
    assert len(signature) % 2 == 0
    view = (
        memoryview(signature).cast("H")
        if shape == "wide items"
        else memoryview(signature).cast("B", shape=[len(signature) // 2, 2])
    )
    assert Signature.decode(view).raw == Signature.decode(signature).raw
    km.public_key("sig2").verify(b"m", view)


# -- PEM key files with text before the BEGIN line ---------------------------------------

_PREAMBLE = b"Bag Attributes\n    localKeyID: 01 02\nKey Attributes: <No Attributes>\n"


def test_load_private_key_reads_an_encrypted_pem_with_a_preamble() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    data = _PREAMBLE + pem.encrypt_private_key_pem(key, "pw", iterations=600_000)
    algorithm, loaded = pem.load_private_key(data, passphrase="pw")
    assert algorithm.value == "ed25519"
    assert loaded.public_key() == key.public_key()


def test_import_key_reads_a_clear_pem_with_a_preamble(km: KeyManager) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    clear = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    km.keys.import_private_key("imported", _PREAMBLE + clear)
    km.verify("imported", b"m", km.sign("imported", b"m"))


# -- one file named for both halves of a generated key pair -------------------------------


@pytest.mark.parametrize("overwrite", [False, True])
def test_generate_rsa_key_files_refuses_one_file_for_both_halves(
    tmp_path: Path, overwrite: bool
) -> None:
    path = tmp_path / "key.pem"
    with pytest.raises(InvalidArgumentError) as caught:
        pem.generate_rsa_key_files(path, str(path), passphrase="pw", overwrite=overwrite)
    assert caught.value.message == (
        f"the private and public key files must be two files, not both {path}"
    )
    assert not path.exists()  # nothing generated, nothing written


def test_generate_rsa_key_files_unencrypted_refuses_a_symlink_to_the_other_half(
    tmp_path: Path,
) -> None:
    from keymgmt.hazmat import generate_rsa_key_files_unencrypted

    private = tmp_path / "private.pem"
    alias = tmp_path / "alias.pem"
    alias.symlink_to(private)
    with pytest.raises(InvalidArgumentError):
        generate_rsa_key_files_unencrypted(private, alias, allow_plaintext=True, overwrite=True)
    assert not private.exists()


# -- a whole key on hold: rotate names the way out -----------------------------------------


def test_rotate_of_a_key_on_hold_says_to_lift_the_hold_not_to_abandon_the_key(
    km: KeyManager,
) -> None:
    km.keys.create("held")
    km.revocation.revoke(SubjectKind.KEY, "held", "certificate-hold")
    with pytest.raises(RevokedError) as caught:
        km.keys.rotate("held")
    assert caught.value.message == (
        "key 'held' is on hold as a whole (certificate-hold): every version, present and "
        "future, is held with it; lift the hold (km.revocation.release_hold) before rotating"
    )
    km.revocation.release_hold(SubjectKind.KEY, "held")
    assert km.keys.rotate("held").version == 2
