"""The openssl CLI as the interop tests drive it (``from _openssl_cli import ...``).

``tests/`` is on ``sys.path`` through ``tests/conftest.py`` (pytest's default
import mode), so test modules anywhere under ``tests/`` can import this file.
Tests using it still need the ``openssl_cli`` fixture (skip or fail without
the command).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from cryptography import x509

from keymgmt.pki import export_certificate


def openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run ``openssl *args`` and return the finished process (text output, not checked)."""
    return subprocess.run(
        ["openssl", *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def openssl_ocsp_check(
    tmp_path: Path,
    root: x509.Certificate,
    sub: x509.Certificate,
    leaf: x509.Certificate,
    response: bytes,
) -> tuple[Path, str]:
    """Check OCSP ``response`` about ``leaf`` (``sub`` issued it, under ``root``) with openssl.

    Returns:
        The path the leaf was written to (openssl names it in its verdict) and
        openssl's combined stdout and stderr.
    """
    files = {
        "root.pem": export_certificate(root),
        "sub.pem": export_certificate(sub),
        "leaf.pem": export_certificate(leaf),
        "resp.der": response,
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    leaf_path = tmp_path / "leaf.pem"
    result = openssl(
        "ocsp", "-respin", tmp_path / "resp.der", "-sha256",
        "-issuer", tmp_path / "sub.pem", "-cert", leaf_path,
        "-CAfile", tmp_path / "root.pem", "-verify_other", tmp_path / "sub.pem",
        "-no_nonce", "-validity_period", "300",
    )  # fmt: skip
    return leaf_path, result.stdout + result.stderr
