"""Property tests for the subject alternative name checks (pki/_names.py)."""

from __future__ import annotations

import re

from cryptography import x509
from hypothesis import given
from hypothesis import strategies as st

from keymgmt.errors import InvalidArgumentError
from keymgmt.pki import parse_names
from keymgmt.pki._names import check_dns_name, check_general_name

_LABEL = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
_HOSTNAMES = (
    st.lists(_LABEL, min_size=1, max_size=5)
    .map(".".join)
    .filter(lambda name: not name.rsplit(".", 1)[-1].isdigit())
)
_LDH_NAME = re.compile(r"(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*")


@given(st.text(max_size=300))
def test_any_text_is_refused_or_an_ldh_name_of_at_most_253_characters(text: str) -> None:
    try:
        name = check_dns_name(text)
    except InvalidArgumentError:
        return
    assert _LDH_NAME.fullmatch(name)
    assert 1 <= len(name) <= 253
    assert "\x00" not in name
    x509.DNSName(name)  # cryptography takes it (A-labels only)


@given(_HOSTNAMES)
def test_ldh_host_names_are_accepted_as_they_are(name: str) -> None:
    assert check_dns_name(name) == name


@given(_HOSTNAMES)
def test_a_wildcard_is_accepted_over_two_labels_or_more(name: str) -> None:
    if "." in name:
        assert check_dns_name("*." + name) == "*." + name
    else:
        try:
            check_dns_name("*." + name)
        except InvalidArgumentError:
            return
        raise AssertionError("a wildcard over one label was accepted")


@given(st.lists(st.one_of(_HOSTNAMES, st.ip_addresses().map(str)), min_size=1, max_size=5))
def test_parsed_names_pass_the_csr_checks_unchanged(names: list[str]) -> None:
    parsed = parse_names(names)
    assert [check_general_name(name) for name in parsed] == parsed
