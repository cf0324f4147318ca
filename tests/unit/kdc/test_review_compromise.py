"""Review of km.compromise: what happens after its transaction has committed."""

from __future__ import annotations

from typing import Any

import pytest
from _kdc_support import client_certificate

from keymgmt import KeyManager
from keymgmt.pki import CertificateAuthority


@pytest.mark.parametrize("error", [OSError("the token went away"), ValueError("bad CRL")])
def test_a_crl_signing_failure_of_any_kind_after_the_commit_still_returns_the_report(
    km: KeyManager, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    # The revocation has committed by the time the CRL is signed: the caller
    # must get the report (crl=due), not an exception that reads as "nothing
    # happened".
    cert = client_certificate(km)
    km.kdc.register_certificate("client-b", cert)

    def cannot_sign(*args: Any, **kwargs: Any) -> None:
        raise error

    monkeypatch.setattr(CertificateAuthority, "crl", cannot_sign)
    report = km.compromise(certificate=cert)
    serial = format(cert.serial_number, "x")
    assert report.crl == f"root:{serial} crl=due"
    assert report.revoked == (f"certificate:root:{serial}", "principal:client-b")
    monkeypatch.undo()
    assert [r.serial for r in km.pki.ca("root").revoked()] == [cert.serial_number]
