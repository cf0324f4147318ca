"""CLI polish: JSON output everywhere, one-line errors, bulk rewrap, progress, completion."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from _cli_env import cli_env, run
from keymgmt import KeyManager
from keymgmt.cli import main
from keymgmt.cli._common import Settings, counting, progress
from keymgmt.errors import StoreUnavailableError

PASSPHRASE = "cli polish passphrase"


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cli_env(monkeypatch, tmp_path, PASSPHRASE, store=tmp_path / "s.db")


def ok(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, out, err = run(capsys, *args)
    assert code == 0, err
    return out


@pytest.fixture
def store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    ok(capsys, "init")
    return tmp_path / "s.db"


# -- rewrap -----------------------------------------------------------------------------


def _encrypt(capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, text: bytes) -> Path:
    (tmp_path / f"{name}.txt").write_bytes(text)
    ok(capsys, "encrypt", "--key", "k", "--in", f"{name}.txt", "--out", f"{name}.enc")
    return tmp_path / f"{name}.enc"


def test_rewrap_moves_files_to_the_primary_version(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path
) -> None:
    ok(capsys, "key", "create", "k")
    files = [_encrypt(capsys, tmp_path, f"f{i}", f"data {i}".encode()) for i in range(3)]
    ok(capsys, "key", "rotate", "k")
    out = ok(capsys, "rewrap", *map(str, files))
    assert out == "rewrapped 3 of 3 files\n"
    ok(capsys, "key", "revoke", "k", "--version", "1", "--reason", "superseded")
    ok(capsys, "key", "destroy", "k", "--version", "1", "--grace-days", "0")
    with KeyManager.open(store, passphrase=PASSPHRASE) as km:
        assert [km.decrypt(f.read_bytes()) for f in files] == [b"data 0", b"data 1", b"data 2"]


def test_rewrap_json_summary_and_keep_going(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path
) -> None:
    ok(capsys, "key", "create", "k")
    good = _encrypt(capsys, tmp_path, "good", b"fine")
    bad = tmp_path / "bad.enc"
    bad.write_bytes(b"not a ciphertext")
    code, out, _ = run(capsys, "--format", "json", "rewrap", "--keep-going", str(good), str(bad))
    summary = json.loads(out)
    assert (code, summary["rewrapped"], summary["failed"]) == (1, 1, 1)
    assert summary["files"][1] == {"file": str(bad), "ok": False, "error": "decryption failed"}


def test_rewrap_stops_at_the_first_bad_file_with_one_line(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path
) -> None:
    ok(capsys, "key", "create", "k")
    bad = tmp_path / "bad.enc"
    bad.write_bytes(b"junk")
    code, out, err = run(capsys, "rewrap", str(bad))
    assert (code, out, err) == (1, "", f"error: {bad}: decryption failed\n")
    assert bad.read_bytes() == b"junk"


# -- completion ---------------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script_for_the_shell(
    capsys: pytest.CaptureFixture[str], shell: str
) -> None:
    out = ok(capsys, "completion", shell)
    assert "_KEYMGMT_COMPLETE" in out


def test_completion_env_variable_completes_subcommands(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "_KEYMGMT_COMPLETE": "bash_complete",
        "COMP_WORDS": "keymgmt ke",
        "COMP_CWORD": "1",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from keymgmt.cli import main; sys.exit(main())"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert "plain,key" in result.stdout.splitlines()


# -- errors -------------------------------------------------------------------------------


def test_usage_errors_are_one_line_with_a_help_pointer(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    code, out, err = run(capsys, "key", "create")
    assert (code, out) == (2, "")
    assert err == "error: Missing argument 'NAME'. (see 'keymgmt key create --help')\n"


def test_unknown_options_are_one_line(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    code, _, err = run(capsys, "key", "list", "--bogus")
    assert code == 2
    assert err == "error: No such option '--bogus'. (see 'keymgmt key list --help')\n"


def test_unexpected_exceptions_are_one_line_without_traceback(
    capsys: pytest.CaptureFixture[str], store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr("keymgmt.cli._common.open_manager", broken)
    code, out, err = run(capsys, "key", "list")
    assert (code, out) == (1, "")
    assert err == (
        "error: unexpected RuntimeError: boom second line (run with --debug for the traceback)\n"
    )


def test_debug_reraises_unexpected_exceptions(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("keymgmt.cli._common.open_manager", broken)
    with pytest.raises(RuntimeError, match="boom"):
        main(["--debug", "key", "list"])


def test_keymgmt_errors_are_one_line(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    code, out, err = run(capsys, "key", "show", "missing")
    assert (code, out, err) == (1, "", "error: no key named 'missing'\n")


def test_multi_line_keymgmt_errors_print_as_one_line(
    capsys: pytest.CaptureFixture[str], store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(*args: object, **kwargs: object) -> None:
        raise StoreUnavailableError('cannot reach the store:\n\tIs the server running on "db"?')

    monkeypatch.setattr("keymgmt.cli._common.open_manager", unreachable)
    code, out, err = run(capsys, "key", "list")
    assert (code, out) == (1, "")
    assert err == 'error: cannot reach the store: Is the server running on "db"?\n'


# -- --format json on every command that prints data ------------------------------------

# Commands whose output is the payload itself (encrypt/decrypt bytes, a DER
# file) or not data at all (demo narration, serve, completion scripts) are
# not listed; the service commands (remote ...) are covered in tests/service.
JSON_COMMANDS: dict[str, list[str]] = {
    "audit verify": ["audit", "verify"],
    "audit tail": ["audit", "tail", "-n", "3"],
    "key create": ["key", "create", "fresh"],
    "key list": ["key", "list"],
    "key show": ["key", "show", "k"],
    "key rotate": ["key", "rotate", "k"],
    "key revoke": ["key", "revoke", "k", "--version", "1", "--reason", "superseded"],
    "key destroy": ["key", "destroy", "other"],
    "key export": ["key", "export", "k", "--kek-file", "kek.bin"],
    "key import": ["key", "import", "imp", "--raw-file", "kek.bin", "--algorithm", "aes-256-gcm"],
    "key public": ["key", "public", "signer"],
    "key public jwk": ["key", "public", "signer", "--format", "jwk"],
    "sign": ["sign", "--key", "signer", "--in", "msg"],
    "verify": ["verify", "--key", "signer", "--in", "msg", "--signature", "msg.sig"],
    "rewrap": ["rewrap", "c.enc"],
    "ca create-root": ["ca", "create-root", "second-root", "--key-type", "ed25519"],
    "ca create-intermediate": ["ca", "create-intermediate", "second", "--parent", "root"],
    "ca list": ["ca", "list"],
    "ca export": ["ca", "export", "root"],
    "ca export chain": ["ca", "export", "issuing", "--chain"],
    "ca issue": ["ca", "issue", "issuing", "--csr", "web.csr"],
    "ca issued": ["ca", "issued", "issuing"],
    "ca crl": ["ca", "crl", "issuing"],
    "cert show": ["cert", "show", "leaf.pem"],
    "cert verify": [
        "cert",
        "verify",
        "leaf.pem",
        "--purpose",
        "tls-server",
        "--name",
        "web.example.com",
    ],
    "kdc register": ["kdc", "register", "bob", "--out", "bob.cred"],
    "kdc rotate-credential": ["kdc", "rotate-credential", "alice", "--out", "alice2.cred"],
    "kdc list": ["kdc", "list"],
    "kdc show": ["kdc", "show", "alice"],
    "kdc grant": ["kdc", "grant", "alice", "--key", "other"],
    "kdc withdraw": ["kdc", "withdraw", "alice", "--key", "k"],
    "kdc policy": ["kdc", "policy"],
    "kdc disable": ["kdc", "disable", "alice"],
    "kdc enable": ["kdc", "enable", "alice"],
    "kdc revoke": ["kdc", "revoke", "alice"],
    "kdc grants": ["kdc", "grants"],
    "kdc revocation-list": ["kdc", "revocation-list", "--out", "rl.bin"],
    "kdc compromise": ["kdc", "compromise", "--key", "k#1"],
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with keys, a CA hierarchy, an issued certificate and a principal."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    base = tmp_path_factory.mktemp("world")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(base)
        mp.setenv("KEYMGMT_TEST_KDF", "insecure")
        mp.setenv("KEYMGMT_PASSPHRASE", PASSPHRASE)
        mp.setenv("KEYMGMT_STORE", str(base / "s.db"))
        (base / "kek.bin").write_bytes(bytes(range(32)))
        (base / "msg").write_bytes(b"a message")
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web")]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("web.example.com")]), False)
            .sign(key, hashes.SHA256())
        )
        (base / "web.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
        for argv in (
            ["init"],
            ["key", "create", "k"],
            ["key", "create", "other"],
            ["key", "create", "signer", "--algorithm", "ed25519"],
            ["sign", "--key", "signer", "--in", "msg", "--out", "msg.sig"],
            ["encrypt", "--key", "k", "--in", "msg", "--out", "c.enc"],
            ["ca", "create-root", "root"],
            ["ca", "create-intermediate", "issuing", "--parent", "root"],
            ["ca", "issue", "issuing", "--csr", "web.csr", "--out", "leaf.pem"],
            ["kdc", "register", "alice", "--out", "alice.cred"],
            ["kdc", "grant", "alice", "--key", "k"],
        ):
            assert main(argv) == 0, argv
    return base


@pytest.fixture
def copy_of_world(world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = tmp_path / "world"
    shutil.copytree(world, target)
    monkeypatch.chdir(target)
    monkeypatch.setenv("KEYMGMT_STORE", str(target / "s.db"))
    return target


@pytest.mark.parametrize("argv", JSON_COMMANDS.values(), ids=JSON_COMMANDS.keys())
def test_format_json_prints_one_parsable_document(
    capsys: pytest.CaptureFixture[str], copy_of_world: Path, argv: list[str]
) -> None:
    capsys.readouterr()
    code, out, err = run(capsys, "--format", "json", *argv)
    assert code == 0, err
    assert isinstance(json.loads(out), dict | list)


def test_init_prints_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = ok(capsys, "--format", "json", "--store", str(tmp_path / "new.db"), "init")
    assert json.loads(out) == {"created": True, "store": str(tmp_path / "new.db")}


@pytest.mark.parametrize(
    "argv",
    [
        ["key", "list"],
        ["ca", "list"],
        ["ca", "issued", "issuing"],
        ["kdc", "list"],
        ["kdc", "grants"],
        ["audit", "tail", "-n", "3"],
    ],
    ids=lambda a: " ".join(a),
)
def test_lists_print_tables_with_a_header(
    capsys: pytest.CaptureFixture[str], copy_of_world: Path, argv: list[str]
) -> None:
    out = ok(capsys, *argv)
    header = out.splitlines()[0]
    assert header == header.upper()
    assert len(header.split()) >= 3


# -- progress -------------------------------------------------------------------------------


class _Terminal:
    """A stderr that says it is a terminal and records what is written."""

    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, data: str) -> int:
        self.text += data
        return len(data)

    def flush(self) -> None:
        pass


def _settings(output: str) -> Settings:
    return Settings(store="x", passphrase_file=None, key_file=None, output=output, debug=False)


def test_progress_draws_a_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress(_settings("text"), [1, 2, 3], "rewrapping") as bar:
        assert list(bar) == [1, 2, 3]
    assert "rewrapping" in terminal.text


def test_progress_is_quiet_with_json_output(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress(_settings("json"), [1, 2], "rewrapping") as bar:
        assert list(bar) == [1, 2]
    with counting(_settings("json"), "CRL") as bar:
        assert bar is None
    assert terminal.text == ""


def test_progress_is_quiet_when_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with progress(_settings("text"), [1], "rewrapping") as bar:
        assert list(bar) == [1]
    with counting(_settings("text"), "CRL") as bar:
        assert bar is None
    assert capsys.readouterr().err == ""


def test_counting_draws_a_bar_to_the_total_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with counting(_settings("text"), "CRL of issuing") as bar:
        assert bar is not None
        bar(4096, 10_000)
        bar(10_000, 10_000)
    assert "CRL of issuing" in terminal.text
    assert "10000/10000" in terminal.text


def test_a_large_crl_reports_its_progress(km: KeyManager) -> None:
    ca = km.pki.create_root_ca("big")
    for serial in range(1, 9000):
        km.revocation._entries[f"certificate:big:{serial:x}"] = ("superseded", 0, None)
    calls: list[tuple[int, int]] = []
    crl = ca.crl(progress=lambda done, total: calls.append((done, total)))
    assert len(crl) == 8999
    assert calls == [(4096, 8999), (8192, 8999), (8999, 8999)]


def test_pem_output_comes_inside_json(
    capsys: pytest.CaptureFixture[str], copy_of_world: Path
) -> None:
    crl = json.loads(ok(capsys, "--format", "json", "ca", "crl", "issuing"))
    assert crl["pem"].startswith("-----BEGIN X509 CRL-----")
    der = json.loads(ok(capsys, "--format", "json", "ca", "export", "root", "--der"))
    assert base64.b64decode(der["der_base64"])[:1] == b"\x30"  # a DER SEQUENCE
