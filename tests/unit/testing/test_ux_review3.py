"""Users' experience review: the testing toolkit and the views behave as documented."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from keymgmt.errors import InvalidArgumentError
from keymgmt.testing import FakeClock, in_memory_manager
from keymgmt.testing import strategies as kst
from keymgmt.testing._pki import CHAIN_DEFECTS, build_chain, build_crl
from keymgmt.views import show

pytest_plugins = ["pytester"]

_AT = dt.datetime(2031, 6, 1, 12, tzinfo=dt.UTC)
_DER = serialization.Encoding.DER


def _replay(strategy: st.SearchStrategy[Any], encode: Callable[[Any], bytes]) -> list[bytes]:
    """The values a derandomized run draws, encoded: Hypothesis replays by choice sequence."""
    drawn: list[bytes] = []

    @settings(max_examples=5, derandomize=True, database=None, deadline=None)
    @given(strategy)
    def collect(value: Any) -> None:
        drawn.append(encode(value))

    collect()
    return drawn


# -- certificates, CSRs and CRLs are the same bytes for the same draw --------------------------


@pytest.mark.parametrize("defect", [None, *CHAIN_DEFECTS])
def test_build_chain_gives_the_same_certificates_and_crls_for_the_same_seed(
    defect: str | None,
) -> None:
    def encoded() -> list[bytes]:
        case = build_chain(11, at=_AT, defect=defect)
        return [c.public_bytes(_DER) for c in (*case.chain, *case.crls)]

    assert encoded() == encoded()


def test_build_crl_gives_the_same_crl_for_the_same_seed() -> None:
    (crl1, cert1), (crl2, cert2) = (build_crl(5, [1, 2, 3], at=_AT) for _ in range(2))
    assert crl1.public_bytes(_DER) == crl2.public_bytes(_DER)
    assert cert1.public_bytes(_DER) == cert2.public_bytes(_DER)


@pytest.mark.parametrize(
    ("strategy", "encode"),
    [
        (kst.csrs(), lambda csr: csr.public_bytes(_DER)),
        (kst.tampered_csrs(), bytes),
        (kst.crls(), lambda case: case.crl.public_bytes(_DER)),
        (
            kst.certificate_chains(defects=[None, *CHAIN_DEFECTS]),
            lambda case: b"".join(c.public_bytes(_DER) for c in (*case.chain, *case.crls)),
        ),
    ],
    ids=["csrs", "tampered_csrs", "crls", "certificate_chains"],
)
def test_pki_strategies_replay_the_same_bytes(
    strategy: st.SearchStrategy[Any], encode: Callable[[Any], bytes]
) -> None:
    # Randomized ECDSA signatures made a replayed draw differ (its length too),
    # so a user's deterministic test failing on some certificate was reported
    # as FlakyFailure instead of its own assertion.
    assert _replay(strategy, encode) == _replay(strategy, encode)


# -- views ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "listing",
    [
        lambda km: km.kdc.grants(),  # docs: show(km.kdc.grants()); none granted yet
        lambda km: km.kdc.list(),  # docs: show(km.kdc.list()); nobody registered yet
        lambda km: km.audit.tail(0),
    ],
    ids=["kdc-grants", "kdc-principals", "audit-tail"],
)
def test_show_renders_an_empty_listing_instead_of_raising(listing: Callable[[Any], Any]) -> None:
    with in_memory_manager() as km:
        empty = listing(km)
        assert len(empty) == 0
        shown = show(empty)
        assert "nothing to show" in str(shown)
        assert "nothing to show" in shown._repr_html_()


# -- the pytest plugin ---------------------------------------------------------------------------

_SQLITE_USER_TEST = """
import pathlib

def test_writes_a_ciphertext(keymgmt_sqlite_manager):
    keymgmt_sqlite_manager.keys.create("k")
    blob = bytes(keymgmt_sqlite_manager.encrypt("k", b"x"))
    with open(pathlib.Path(__file__).parent / "out.txt", "a") as out:
        out.write(blob.hex() + "\\n")
"""


def test_the_sqlite_manager_fixture_is_as_reproducible_as_the_in_memory_one(
    pytester: pytest.Pytester,
) -> None:
    # keymgmt_manager uses keymgmt_randomness (seeded from the node id);
    # keymgmt_sqlite_manager drew keys and nonces from the OS instead.
    pytester.makeconftest('pytest_plugins = ["keymgmt.testing.pytest_plugin"]')
    pytester.makepyfile(_SQLITE_USER_TEST)
    for _ in range(2):
        pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    first, second = (pytester.path / "out.txt").read_text().split()
    assert first == second


def _with_duplicate_extension(der: bytes, twin: str) -> bytes:
    # The authority key identifier's OID becomes another extension's (``twin``, present
    # too): pyca loads the DER (extensions are parsed lazily) and refuses its extensions.
    aki = bytes.fromhex("0603551d23")
    assert der.count(aki) == 1
    return der.replace(aki, bytes.fromhex(twin))


def test_views_show_a_certificate_with_unreadable_extensions_instead_of_crashing() -> None:
    from cryptography import x509

    case = build_chain(3, at=_AT)
    cert = x509.load_der_x509_certificate(
        _with_duplicate_extension(case.intermediate.public_bytes(_DER), "0603551d0e")
    )
    for obj in (cert, [cert, case.root]):
        shown = show(obj)
        assert "keymgmt test issuing" in str(shown)
        assert "keymgmt test issuing" in shown._repr_html_()
    assert "unreadable" in str(show(cert))


def test_views_show_a_crl_with_unreadable_extensions_instead_of_crashing() -> None:
    from cryptography import x509

    crl, _ = build_crl(4, [7], at=_AT)
    bad = x509.load_der_x509_crl(_with_duplicate_extension(crl.public_bytes(_DER), "0603551d14"))
    shown = show(bad)
    assert "keymgmt test CRL issuer" in str(shown)
    assert "unreadable" in shown._repr_html_()


# -- the fakes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((float("nan"),), {}),
        ((float("inf"),), {}),
        (("30",), {}),
        ((), {"days": 10**10}),
        ((), {"fortnights": 1}),
        ((dt.timedelta(days=2),), {}),  # past datetime.max from the start below
    ],
    ids=["nan", "inf", "str", "too-many-days", "unknown-unit", "past-the-end"],
)
def test_fake_clock_refuses_a_bad_step_with_invalid_argument_and_stays_put(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    start = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)
    clock = FakeClock(start)
    with pytest.raises(InvalidArgumentError):
        clock.advance(*args, **kwargs)
    assert clock.now() == start


# -- strategies refuse what they cannot draw -------------------------------------------------------


@pytest.mark.parametrize(
    "strategy",
    [
        lambda: kst.ap_requests(defects=["expird"]),
        lambda: kst.broken_ap_requests(defects=["replay"]),
        lambda: kst.certificate_chains(defects=["expird"]),
    ],
    ids=["ap_requests", "broken_ap_requests", "certificate_chains"],
)
def test_an_unknown_defect_is_refused_not_drawn_as_a_valid_message(
    strategy: Callable[[], st.SearchStrategy[Any]],
) -> None:
    # A misspelt defect drew valid AP requests labelled with it, so a test expecting
    # the refusal failed with "did not raise" rather than naming the typo.
    @settings(max_examples=1, database=None, deadline=None)
    @given(strategy())
    def users_test(case: Any) -> None:
        raise AssertionError(f"drew a case for defect {case.defect!r}")

    with pytest.raises(InvalidArgumentError, match="defect"):
        users_test()


@pytest.mark.parametrize(
    "strategy",
    [lambda: kst.kdc_replies(kinds=["keys"]), lambda: kst.mutated_kdc_replies(kinds=["tickets"])],
    ids=["kdc_replies", "mutated_kdc_replies"],
)
def test_an_unknown_kdc_reply_kind_is_refused_not_drawn_as_a_ticket_reply(
    strategy: Callable[[], st.SearchStrategy[Any]],
) -> None:
    # Any kind but "key" drew a TICKET_REPLY labelled with the misspelt kind.
    @settings(max_examples=1, database=None, deadline=None)
    @given(strategy())
    def users_test(case: Any) -> None:
        raise AssertionError(f"drew a {case.kind!r} reply")

    with pytest.raises(InvalidArgumentError, match="kind"):
        users_test()


def test_dir_of_keymgmt_testing_lists_every_public_name() -> None:
    # ThrowawayCA and handshake_pair are imported on first use; without them in
    # dir() the API reference (autodoc) and IPython's completion left them out.
    import keymgmt.testing

    assert set(keymgmt.testing.__all__) <= set(dir(keymgmt.testing))


def test_certificate_view_names_a_private_extended_key_usage_by_its_oid() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from keymgmt.testing._pki import derive_key, name

    key = derive_key(1, "eku")
    private = x509.ObjectIdentifier("1.3.6.1.4.1.99999.1")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("eku"))
        .issuer_name(name("eku"))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(_AT)
        .not_valid_after(_AT + dt.timedelta(days=1))
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, private]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    shown = str(show(cert))
    assert "serverAuth, 1.3.6.1.4.1.99999.1" in shown  # was "serverAuth, Unknown OID"
