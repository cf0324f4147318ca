"""The protocol-message strategies: real messages are accepted, broken ones refused.

Each property drives the real receiving object (``KdcClient``,
``TicketReceiver``, a handshake ``Initiator``) with what a strategy draws:
a valid message is accepted (once, where the protocol forbids replays), and
a broken or mutated one raises a ``KeyMgmtError`` subclass — never another
exception type, never acceptance.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from keymgmt.errors import (
    KeyMgmtError,
    RemoteProtocolError,
    ReplayError,
    StaleMessageError,
)
from keymgmt.exchange import NEED_DATA, HandshakeComplete
from keymgmt.kdc import AcceptedSession, GrantedKey, SessionTicket
from keymgmt.testing import strategies as kst

# Every draw builds a manager and registers principals: a small budget.
FEW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- KDC replies -------------------------------------------------------------------------


@FEW
@given(kst.kdc_replies())
def test_kdc_replies_are_accepted_once(case: kst.KdcReplyCase) -> None:
    result = case.receive(case.reply)
    if case.kind == "key":
        assert isinstance(result, GrantedKey)
        assert result.key_name == case.target
    else:
        assert isinstance(result, SessionTicket)
        assert result.service == case.target
    with pytest.raises(RemoteProtocolError, match="answers no pending request"):
        case.receive(case.reply)


@FEW
@given(kst.mutated_kdc_replies())
def test_mutated_kdc_replies_raise_only_keymgmt_errors(case: kst.KdcReplyCase) -> None:
    assert case.reply != case.original
    with pytest.raises(KeyMgmtError):
        case.receive(case.reply)


@FEW
@given(kst.mutated_kdc_replies())
def test_a_refused_mutation_leaves_the_request_pending(case: kst.KdcReplyCase) -> None:
    with pytest.raises(KeyMgmtError):
        case.receive(case.reply)
    assert case.receive(case.original) is not None  # a forgery cannot cancel a request


# -- tickets ------------------------------------------------------------------------------------


@FEW
@given(kst.kdc_tickets())
def test_kdc_tickets_open_at_their_service(case: kst.TicketCase) -> None:
    session = case.receiver.accept(case.client.ap_request(case.ticket).data)
    assert (session.client, session.service) == (case.ticket.client, case.ticket.service)
    assert session.ticket_id == case.ticket.ticket_id


@FEW
@given(kst.mutated_kdc_tickets())
def test_mutated_kdc_tickets_raise_only_keymgmt_errors(case: kst.TicketCase) -> None:
    assert case.ticket.ticket != case.original
    with pytest.raises(KeyMgmtError):
        # An empty or oversize ticket is refused already when the request is built.
        case.receiver.accept(case.client.ap_request(case.ticket).data)


# -- AP requests (ticket + authenticator) ------------------------------------------------------


@FEW
@given(kst.ap_requests())
def test_ap_requests_are_accepted_once_and_authenticate_the_service(
    case: kst.ApRequestCase,
) -> None:
    session = case.receiver.accept(case.data)
    assert isinstance(session, AcceptedSession)
    assert session.session_key == case.ticket.session_key
    case.client.receive_ap_reply(case.request, session.reply)
    with pytest.raises(ReplayError):
        case.receiver.accept(case.data)


_DEFECT_ERRORS: dict[str, type[KeyMgmtError]] = {
    "expired": StaleMessageError,
    "replayed": ReplayError,
    "wrong-service": RemoteProtocolError,
    "tampered-ticket": KeyMgmtError,
}


@FEW
@given(kst.broken_ap_requests())
def test_broken_ap_requests_are_refused_for_their_defect(case: kst.ApRequestCase) -> None:
    assert case.defect in kst.AP_REQUEST_DEFECTS
    with pytest.raises(_DEFECT_ERRORS[case.defect]):
        case.receiver.accept(case.data)


@FEW
@given(kst.broken_ap_requests(defects=["expired"]))
def test_expired_tickets_say_so(case: kst.ApRequestCase) -> None:
    with pytest.raises(StaleMessageError, match="the ticket has expired"):
        case.receiver.accept(case.data)


@FEW
@given(kst.mutated_ap_requests())
def test_mutated_ap_requests_raise_only_keymgmt_errors(case: kst.ApRequestCase) -> None:
    assert case.data != case.original
    with pytest.raises(KeyMgmtError):
        case.receiver.accept(case.data)


# -- session (AP) replies ------------------------------------------------------------------------


@FEW
@given(kst.session_replies())
def test_session_replies_are_accepted(case: kst.SessionReplyCase) -> None:
    case.client.receive_ap_reply(case.request, case.reply)
    assert case.session.session_key == case.request.ticket.session_key


@FEW
@given(kst.mutated_session_replies())
def test_mutated_session_replies_raise_only_keymgmt_errors(case: kst.SessionReplyCase) -> None:
    with pytest.raises(KeyMgmtError):
        case.client.receive_ap_reply(case.request, case.reply)


# -- handshake ServerHellos ----------------------------------------------------------------------


@FEW
@given(kst.server_hellos())
def test_server_hellos_complete_the_handshake(case: kst.ServerHelloCase) -> None:
    case.initiator.receive_data(case.server_hello)
    event = case.initiator.next_event()
    assert isinstance(event, HandshakeComplete)
    assert event.session.peer.identity == case.server_name
    case.responder.receive_data(case.initiator.data_to_send())
    assert isinstance(case.responder.next_event(), HandshakeComplete)


@FEW
@given(kst.mutated_server_hellos())
def test_mutated_server_hellos_never_complete_a_handshake(case: kst.ServerHelloCase) -> None:
    try:
        case.initiator.receive_data(case.server_hello)
        event = case.initiator.next_event()
    except KeyMgmtError:
        return
    if event is NEED_DATA:
        return  # cut short, or a larger length field: waits for more bytes
    # Only the intact flight with bytes appended completes: those bytes
    # belong to the next frame.
    assert case.server_hello.startswith(case.original), "a mutated ServerHello was accepted"
