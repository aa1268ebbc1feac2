"""Every transition of the pairing state machine, with a fake monotonic clock."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spine.errors import PairingError
from spine.security import pairing
from spine.security.pairing import (
    Admit,
    CloseReason,
    OpenReason,
    PairingMachine,
    PairingRequest,
    PairingState,
    Refusal,
    Refuse,
    WindowClosed,
    proof_for,
)

T0 = 5000.0
KEY = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
ADDR = "tcp://192.0.2.7:51234"
WRONG = hashlib.sha256(b"not the token").digest()


def request(proof: bytes, key: str = KEY) -> PairingRequest:
    return PairingRequest(public_key=key, address=ADDR, name="memory-1", kind=2, proof=proof)


@pytest.fixture
def machine() -> PairingMachine:
    return PairingMachine()


@pytest.fixture
def opened(machine: PairingMachine) -> tuple[PairingMachine, bytes]:
    token = machine.open_window(T0, OpenReason.EMPTY_WHITELIST)
    return machine, token


def refused(decision: Admit | Refuse) -> Refuse:
    assert isinstance(decision, Refuse), decision
    return decision


# --- LOCKED ---------------------------------------------------------------------------


def test_machine_starts_locked(machine: PairingMachine) -> None:
    assert machine.state is PairingState.LOCKED
    assert not machine.window_open
    assert machine.next_deadline() is None
    assert machine.remaining(T0) == 0.0
    assert machine.open_reason is None


def test_pairing_while_locked_is_refused_without_counting(machine: PairingMachine) -> None:
    decision = refused(machine.attempt(request(WRONG), T0))
    assert decision.reason is Refusal.NO_WINDOW
    assert (decision.failures, decision.window_closed) == (0, False)
    assert decision.path == (PairingState.LOCKED,)
    assert machine.state is PairingState.LOCKED


def test_check_while_locked_does_nothing(machine: PairingMachine) -> None:
    assert machine.check(T0 + 1e6) is None


def test_closing_a_closed_window_is_an_error(machine: PairingMachine) -> None:
    with pytest.raises(PairingError, match="no pairing window is open"):
        machine.close_window(T0)


# --- opening: BOOTSTRAP ---------------------------------------------------------------


def test_open_window_returns_fresh_256_bit_token_and_enters_bootstrap(
    opened: tuple[PairingMachine, bytes],
) -> None:
    machine, token = opened
    assert isinstance(token, bytes) and len(token) == 32
    assert machine.state is PairingState.BOOTSTRAP
    assert machine.window_open
    assert machine.open_reason is OpenReason.EMPTY_WHITELIST
    assert machine.expires_at() == T0 + 300.0
    assert machine.next_deadline() == T0 + 300.0
    assert machine.remaining(T0 + 100.0) == 200.0


def test_token_is_drawn_from_secrets(
    machine: PairingMachine, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def fake_token_bytes(n: int) -> bytes:
        calls.append(n)
        return bytes(range(n))

    monkeypatch.setattr(pairing.secrets, "token_bytes", fake_token_bytes)
    token = machine.open_window(T0, OpenReason.OPERATOR)
    assert calls == [32] and token == bytes(range(32))


def test_each_window_draws_a_different_token(machine: PairingMachine) -> None:
    first = machine.open_window(T0, OpenReason.OPERATOR)
    machine.close_window(T0 + 1.0)
    second = machine.open_window(T0 + 2.0, OpenReason.OPERATOR)
    assert first != second


def test_machine_keeps_the_hash_never_the_token(opened: tuple[PairingMachine, bytes]) -> None:
    machine, token = opened
    held = [v for v in vars(machine).values() if isinstance(v, (bytes, bytearray))]
    assert held, "expected the machine to hold its digest"
    assert all(token not in bytes(v) for v in held)
    assert any(bytes(v) == hashlib.sha256(token).digest() for v in held)


def test_opening_an_open_window_is_an_error(opened: tuple[PairingMachine, bytes]) -> None:
    machine, _ = opened
    with pytest.raises(PairingError, match="already open"):
        machine.open_window(T0 + 1.0, OpenReason.OPERATOR)
    assert machine.state is PairingState.BOOTSTRAP


def test_opening_while_pairing_is_an_error(opened: tuple[PairingMachine, bytes]) -> None:
    machine, _ = opened
    machine.attempt(request(WRONG), T0 + 1.0)
    assert machine.state is PairingState.PAIRING
    with pytest.raises(PairingError, match="already open"):
        machine.open_window(T0 + 2.0, OpenReason.OPERATOR)


# --- success: VERIFICATION → LOCKED ---------------------------------------------------


def test_matching_proof_admits_and_locks(opened: tuple[PairingMachine, bytes]) -> None:
    machine, token = opened
    decision = machine.attempt(request(proof_for(token)), T0 + 10.0)
    assert isinstance(decision, Admit)
    assert decision.request.public_key == KEY and decision.request.name == "memory-1"
    assert decision.at == T0 + 10.0
    assert decision.path == (
        PairingState.BOOTSTRAP,
        PairingState.VERIFICATION,
        PairingState.LOCKED,
    )
    assert machine.state is PairingState.LOCKED
    assert machine.next_deadline() is None


def test_success_wipes_the_hash(opened: tuple[PairingMachine, bytes]) -> None:
    machine, token = opened
    digest_buffer = next(v for v in vars(machine).values() if isinstance(v, bytearray))
    machine.attempt(request(proof_for(token)), T0 + 1.0)
    assert digest_buffer == bytearray(len(digest_buffer))  # overwritten with zeros in place
    held = [v for v in vars(machine).values() if isinstance(v, (bytes, bytearray))]
    assert all(proof_for(token) not in bytes(v) for v in held)


def test_proof_is_sha256_of_token() -> None:
    assert proof_for(b"abc") == hashlib.sha256(b"abc").digest()


def test_raw_token_is_not_a_valid_proof(opened: tuple[PairingMachine, bytes]) -> None:
    machine, token = opened
    assert refused(machine.attempt(request(token), T0 + 1.0)).reason is Refusal.WRONG_TOKEN


def test_spent_token_reuse_is_refused_while_locked(opened: tuple[PairingMachine, bytes]) -> None:
    machine, token = opened
    machine.attempt(request(proof_for(token)), T0 + 1.0)
    decision = refused(machine.attempt(request(proof_for(token), key="another"), T0 + 2.0))
    assert decision.reason is Refusal.SPENT_TOKEN
    assert decision.public_key == "another"


def test_spent_token_reuse_in_a_later_window_is_refused_and_counted(
    opened: tuple[PairingMachine, bytes],
) -> None:
    machine, token = opened
    machine.attempt(request(proof_for(token)), T0 + 1.0)
    machine.open_window(T0 + 2.0, OpenReason.OPERATOR)
    decision = refused(machine.attempt(request(proof_for(token)), T0 + 3.0))
    assert decision.reason is Refusal.SPENT_TOKEN
    assert decision.failures == 1
    assert machine.state is PairingState.PAIRING


# --- mismatch: PAIRING ----------------------------------------------------------------


def test_wrong_proof_is_refused_with_alert_and_enters_pairing(
    opened: tuple[PairingMachine, bytes],
) -> None:
    machine, _ = opened
    decision = refused(machine.attempt(request(WRONG), T0 + 1.0))
    assert decision.reason is Refusal.WRONG_TOKEN
    assert (decision.failures, decision.window_closed) == (1, False)
    assert decision.path == (
        PairingState.BOOTSTRAP,
        PairingState.VERIFICATION,
        PairingState.PAIRING,
    )
    assert KEY in decision.alert and ADDR in decision.alert and "SECURITY" in decision.alert
    assert machine.state is PairingState.PAIRING
    assert machine.failures == 1


def test_retry_after_a_mistake_can_still_pair(opened: tuple[PairingMachine, bytes]) -> None:
    machine, token = opened
    for i in range(4):
        refused(machine.attempt(request(WRONG), T0 + i))
    decision = machine.attempt(request(proof_for(token)), T0 + 5.0)
    assert isinstance(decision, Admit)
    assert decision.path[0] is PairingState.PAIRING
    assert machine.state is PairingState.LOCKED


def test_five_failures_close_the_window(opened: tuple[PairingMachine, bytes]) -> None:
    machine, token = opened
    for i in range(1, 5):
        d = refused(machine.attempt(request(WRONG), T0 + i))
        assert (d.failures, d.window_closed) == (i, False)
    fifth = refused(machine.attempt(request(WRONG), T0 + 5.0))
    assert (fifth.reason, fifth.failures, fifth.window_closed) == (Refusal.WRONG_TOKEN, 5, True)
    assert fifth.path[-1] is PairingState.LOCKED
    assert "window closed" in fifth.alert
    assert machine.state is PairingState.LOCKED
    assert machine.failures == 0
    late = refused(machine.attempt(request(proof_for(token)), T0 + 6.0))
    assert late.reason is Refusal.LOCKED_OUT


def test_lockout_threshold_is_configurable() -> None:
    machine = PairingMachine(max_failures=2)
    machine.open_window(T0, OpenReason.OPERATOR)
    assert not refused(machine.attempt(request(WRONG), T0)).window_closed
    assert refused(machine.attempt(request(WRONG), T0)).window_closed


def test_failures_do_not_carry_over_to_the_next_window(machine: PairingMachine) -> None:
    machine.open_window(T0, OpenReason.OPERATOR)
    for _ in range(4):
        machine.attempt(request(WRONG), T0 + 1.0)
    machine.close_window(T0 + 2.0)
    machine.open_window(T0 + 3.0, OpenReason.OPERATOR)
    assert machine.failures == 0
    assert refused(machine.attempt(request(WRONG), T0 + 4.0)).failures == 1


def test_short_proof_is_malformed_and_counted(opened: tuple[PairingMachine, bytes]) -> None:
    machine, token = opened
    decision = refused(machine.attempt(request(proof_for(token)[:31]), T0 + 1.0))
    assert decision.reason is Refusal.MALFORMED
    assert "31 bytes" in decision.detail and decision.failures == 1
    assert decision.path == (PairingState.BOOTSTRAP, PairingState.PAIRING)


def test_oversized_proof_is_malformed(opened: tuple[PairingMachine, bytes]) -> None:
    machine, token = opened
    decision = refused(machine.attempt(request(proof_for(token) + b"\0"), T0 + 1.0))
    assert decision.reason is Refusal.MALFORMED


def test_unparseable_request_reported_by_broker_is_counted(
    opened: tuple[PairingMachine, bytes],
) -> None:
    machine, _ = opened
    decision = machine.malformed(KEY, ADDR, "3 frames, expected 1", T0 + 1.0)
    assert (decision.reason, decision.failures) == (Refusal.MALFORMED, 1)
    assert "3 frames" in decision.alert
    assert machine.state is PairingState.PAIRING


def test_malformed_while_locked_is_refused_without_counting(machine: PairingMachine) -> None:
    decision = machine.malformed(KEY, ADDR, "garbage", T0)
    assert (decision.reason, decision.failures, decision.window_closed) == (
        Refusal.MALFORMED, 0, False,
    )


# --- expiry -----------------------------------------------------------------------------


def test_proof_just_before_300_seconds_is_accepted(opened: tuple[PairingMachine, bytes]) -> None:
    machine, token = opened
    assert isinstance(machine.attempt(request(proof_for(token)), T0 + 299.999999), Admit)


def test_proof_at_exactly_300_seconds_is_refused_as_expired(
    opened: tuple[PairingMachine, bytes],
) -> None:
    machine, token = opened
    decision = refused(machine.attempt(request(proof_for(token)), T0 + 300.0))
    assert (decision.reason, decision.window_closed) == (Refusal.EXPIRED, True)
    assert machine.state is PairingState.LOCKED


def test_check_closes_window_at_exactly_300_seconds(opened: tuple[PairingMachine, bytes]) -> None:
    machine, token = opened
    assert machine.check(T0 + 299.999999) is None
    assert machine.state is PairingState.BOOTSTRAP
    assert machine.check(T0 + 300.0) == WindowClosed(CloseReason.EXPIRED, T0 + 300.0)
    assert machine.state is PairingState.LOCKED
    assert machine.check(T0 + 301.0) is None
    late = refused(machine.attempt(request(proof_for(token)), T0 + 301.0))
    assert late.reason is Refusal.EXPIRED


def test_wrong_proof_after_expiry_is_reported_as_expired(
    opened: tuple[PairingMachine, bytes],
) -> None:
    machine, _ = opened
    machine.attempt(request(WRONG), T0 + 1.0)
    decision = refused(machine.attempt(request(WRONG), T0 + 300.0))
    assert (decision.reason, decision.failures, decision.window_closed) == (
        Refusal.EXPIRED, 1, True,
    )


def test_malformed_after_expiry_closes_the_window(opened: tuple[PairingMachine, bytes]) -> None:
    machine, _ = opened
    decision = machine.malformed(KEY, ADDR, "garbage", T0 + 300.0)
    assert (decision.reason, decision.window_closed) == (Refusal.EXPIRED, True)
    assert machine.state is PairingState.LOCKED


def test_expiry_is_measured_from_opening_not_from_failures(
    opened: tuple[PairingMachine, bytes],
) -> None:
    machine, _ = opened
    machine.attempt(request(WRONG), T0 + 250.0)
    assert machine.next_deadline() == T0 + 300.0
    assert machine.check(T0 + 300.0) is not None


def test_window_length_is_configurable_for_tests() -> None:
    machine = PairingMachine(window_seconds=2.0)
    token = machine.open_window(T0, OpenReason.OPERATOR)
    assert machine.check(T0 + 2.0) == WindowClosed(CloseReason.EXPIRED, T0 + 2.0)
    assert refused(machine.attempt(request(proof_for(token)), T0 + 2.0)).reason is Refusal.EXPIRED


@pytest.mark.parametrize(
    ("window", "failures"), [(0.0, 5), (-1.0, 5), (float("nan"), 5), (300.0, 0)]
)
def test_invalid_configuration_is_refused(window: float, failures: int) -> None:
    with pytest.raises(PairingError):
        PairingMachine(window_seconds=window, max_failures=failures)


# --- operator close -----------------------------------------------------------------------


def test_operator_can_close_the_window(opened: tuple[PairingMachine, bytes]) -> None:
    machine, token = opened
    assert machine.close_window(T0 + 5.0) == WindowClosed(CloseReason.OPERATOR, T0 + 5.0)
    assert machine.state is PairingState.LOCKED
    refused(machine.attempt(request(proof_for(token)), T0 + 6.0))


def test_operator_can_close_a_window_in_pairing(opened: tuple[PairingMachine, bytes]) -> None:
    machine, _ = opened
    machine.attempt(request(WRONG), T0 + 1.0)
    assert machine.close_window(T0 + 2.0).reason is CloseReason.OPERATOR


def test_reuse_memory_is_bounded(machine: PairingMachine) -> None:
    first = machine.open_window(T0, OpenReason.OPERATOR)
    machine.close_window(T0)
    for _ in range(100):
        machine.open_window(T0, OpenReason.OPERATOR)
        machine.close_window(T0)
    # Long forgotten: no longer named as reused, but refused all the same.
    assert refused(machine.attempt(request(proof_for(first)), T0)).reason is Refusal.NO_WINDOW


# --- property: whatever the sequence, the door admits only the current token, once ------

_events = st.lists(
    st.one_of(
        st.tuples(st.just("open"), st.floats(0, 400)),
        st.tuples(st.just("right"), st.floats(0, 400)),
        st.tuples(st.just("wrong"), st.floats(0, 400)),
        st.tuples(st.just("check"), st.floats(0, 400)),
        st.tuples(st.just("close"), st.floats(0, 400)),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(_events)
def test_only_the_current_token_inside_its_window_is_ever_admitted(events: list) -> None:
    machine = PairingMachine()
    now = 0.0
    token: bytes | None = None
    opened_at = 0.0
    admitted_in_window = False
    failures = 0
    for kind, step in events:
        now += step
        if kind == "open":
            if machine.window_open:
                with pytest.raises(PairingError):
                    machine.open_window(now, OpenReason.OPERATOR)
            else:
                token, opened_at, admitted_in_window, failures = (
                    machine.open_window(now, OpenReason.OPERATOR), now, False, 0,
                )
        elif kind == "close":
            if machine.window_open:
                machine.close_window(now)
            else:
                with pytest.raises(PairingError):
                    machine.close_window(now)
        elif kind == "check":
            machine.check(now)
        else:
            was_open = machine.window_open
            proof = proof_for(token) if (kind == "right" and token) else WRONG
            decision = machine.attempt(request(proof), now)
            if isinstance(decision, Admit):
                assert was_open and kind == "right"
                assert now < opened_at + 300.0
                assert not admitted_in_window and failures < 5
                admitted_in_window = True
            elif was_open and decision.reason is not Refusal.EXPIRED:
                failures += 1
                assert decision.failures == failures
        assert machine.failures < 5
        if machine.window_open:
            assert machine.expires_at() == opened_at + 300.0


# --- which kinds a window admits ------------------------------------------------------

CLI = pairing.ADMINISTRATOR_KIND


def test_a_default_window_admits_every_kind_but_the_administrator(
    opened: tuple[PairingMachine, bytes],
) -> None:
    machine, token = opened
    assert CLI not in machine.admitted_kinds and 2 in machine.admitted_kinds
    attempt = PairingRequest(KEY, ADDR, "cli-2", CLI, proof_for(token))
    decision = refused(machine.attempt(attempt, T0 + 1.0))
    assert decision.reason is Refusal.KIND_NOT_ADMITTED
    assert "CLI_CONTROLLER asked" in decision.detail
    assert (decision.failures, decision.window_closed) == (1, False)  # counted, window open
    assert isinstance(machine.attempt(request(proof_for(token)), T0 + 2.0), Admit)


def test_a_window_opened_for_the_administrator_admits_it(machine: PairingMachine) -> None:
    token = machine.open_window(T0, OpenReason.OPERATOR, frozenset({CLI}))
    assert machine.admitted_kinds == {CLI}
    assert refused(machine.attempt(request(proof_for(token)), T0)).reason \
        is Refusal.KIND_NOT_ADMITTED  # memory-1 asks for MEMORY_SYSTEM
    attempt = PairingRequest(KEY, ADDR, "cli-2", CLI, proof_for(token))
    assert isinstance(machine.attempt(attempt, T0 + 1.0), Admit)
    assert machine.admitted_kinds == frozenset()  # closed


@pytest.mark.parametrize("kinds", [frozenset(), frozenset({99})])
def test_a_window_for_no_known_kind_is_an_error(machine: PairingMachine, kinds) -> None:
    with pytest.raises(PairingError, match="at least one known kind"):
        machine.open_window(T0, OpenReason.OPERATOR, kinds)
    assert machine.state is PairingState.LOCKED
