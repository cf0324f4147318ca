"""``keymgmt key create``, ``sign``, ``verify`` and ``key public`` for every signing algorithm.

One store for the module holds a key per signing algorithm, each made by
``keymgmt key create --algorithm X`` (so RSA-3072 and RSA-4096 are generated
once, not once per test). The cases come from the algorithm table, so a new
signing algorithm is covered the day it is added.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from _cli_env import cli_env, run
from keymgmt import KeyManager
from keymgmt.algorithms import Algorithm, KeyUsage
from keymgmt.cli import main
from keymgmt.errors import InvalidSignatureError
from keymgmt.keys import _asymmetric as asym
from keymgmt.public import PublicKey, Signature

PASSPHRASE = "cli every algorithm"
MESSAGE = b"release 2.0"

SIGNING = sorted(
    (a for a, usages in asym.USAGES.items() if KeyUsage.SIGN_VERIFY in usages),
    key=lambda a: a.value,
)
ALGORITHMS = [pytest.param(a, id=a.value) for a in SIGNING]
FORMATS = ["pem", "jwk", "der"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A store with one key per signing algorithm (named after it), a message file and,
    per algorithm, ``NAME.sig``: the message signed by ``keymgmt sign --out``.

    Signing once here keeps the number of private-key loads (one per CLI
    call, about 0.4 s for RSA-4096) small.
    """
    folder = tmp_path_factory.mktemp("cli-all")
    path = folder / "s.db"
    (folder / "msg").write_bytes(MESSAGE)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("KEYMGMT_TEST_KDF", "insecure")
        patch.setenv("KEYMGMT_PASSPHRASE", PASSPHRASE)
        patch.setenv("KEYMGMT_STORE", str(path))
        patch.delenv("KEYMGMT_KEY_FILE", raising=False)
        assert main(["init"]) == 0
        for algorithm in SIGNING:
            name = algorithm.value
            assert main(["key", "create", name, "--algorithm", name]) == 0, name
            assert main(["sign", "--key", name, "--in", "msg", "--out", f"{name}.sig"]) == 0
        yield path


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, store: Path) -> None:
    cli_env(monkeypatch, store.parent, PASSPHRASE, store=store)


def test_the_store_holds_a_key_of_every_signing_algorithm(store: Path) -> None:
    with KeyManager.open(store, passphrase=PASSPHRASE) as km:
        found = {info.name: (info.algorithm, info.usage) for info in km.keys.list()}
    assert found == {a.value: (a, KeyUsage.SIGN_VERIFY) for a in SIGNING}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_signature_from_sign_out_verifies(
    capsys: pytest.CaptureFixture[str], algorithm: Algorithm
) -> None:
    name = algorithm.value
    code, out, _ = run(capsys, "verify", "--key", name, "--in", "msg", "--signature", f"{name}.sig")
    assert (code, out) == (0, f"{name}: signature valid\n")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_verify_of_a_changed_message_exits_1(
    capsys: pytest.CaptureFixture[str], algorithm: Algorithm, tmp_path: Path
) -> None:
    name = algorithm.value
    (tmp_path / "other").write_bytes(MESSAGE + b"!")
    code, out, _ = run(
        capsys, "verify", "--key", name, "--in", str(tmp_path / "other"),
        "--signature", f"{name}.sig",
    )  # fmt: skip
    assert (code, out) == (1, f"{name}: signature INVALID\n")


def _load(fmt: str, data: bytes, algorithm: Algorithm) -> PublicKey:
    if fmt == "pem":
        return PublicKey.from_pem(data)
    if fmt == "jwk":
        return PublicKey.from_jwk(data)
    return PublicKey.from_der(data, algorithm=algorithm)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_key_public_exports_the_key_that_checks_the_cli_signature(
    capsys: pytest.CaptureFixture[str], algorithm: Algorithm, fmt: str, tmp_path: Path
) -> None:
    name = algorithm.value
    out_file = tmp_path / f"pub.{fmt}"
    code, out, err = run(capsys, "key", "public", name, "--format", fmt, "--out", str(out_file))
    assert (code, out, err) == (0, f"wrote {out_file} ({fmt}, {name} version 1)\n", "")
    public = _load(fmt, out_file.read_bytes(), algorithm)
    assert public.algorithm is algorithm
    if fmt != "der":  # PEM and JWK carry the key's identity; DER is bare SPKI
        assert (public.key_name, public.version) == (name, 1)
    # The exported key alone (no store) checks the plain signature inside the envelope.
    detached = Signature.decode(Path(f"{name}.sig").read_bytes()).raw
    public.verify_detached(MESSAGE, detached)
    with pytest.raises(InvalidSignatureError):
        public.verify_detached(MESSAGE + b"!", detached)
