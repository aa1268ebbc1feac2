"""Every edge of the RES-02 state machine, driven with explicit times and no I/O."""

from __future__ import annotations

import pytest

from spine.errors import ConfigError
from spine.resilience.breaker import Breaker, BreakerConfig, BreakerSnapshot, BreakerState, BreakerTransition

T0 = 100.0


def opened(config: BreakerConfig | None = None, at: float = T0) -> Breaker:
    breaker = Breaker(config or BreakerConfig())
    for _ in range(breaker.config.failure_threshold):
        breaker.admit(at)
        breaker.record_failure(at, "boom")
    assert breaker.state is BreakerState.OPEN
    return breaker


def half_open(config: BreakerConfig | None = None) -> Breaker:
    breaker = opened(config)
    admission = breaker.admit(T0 + breaker.config.cooldown)
    assert admission.trial
    return breaker


def test_defaults_are_the_spec_numbers() -> None:
    config = BreakerConfig()
    assert (config.failure_threshold, config.cooldown) == (5, 30.0)


def test_closed_breaker_admits_calls() -> None:
    admission = Breaker().admit(T0)
    assert admission.allowed and not admission.trial and admission.retry_at is None


def test_four_failures_keep_it_closed_and_the_fifth_opens_it() -> None:
    breaker = Breaker()
    for i in range(4):
        assert breaker.record_failure(T0 + i, f"err {i}") is None
        assert breaker.state is BreakerState.CLOSED
    assert breaker.record_failure(T0 + 4, "err 4") == BreakerTransition(BreakerState.CLOSED, BreakerState.OPEN)
    snap = breaker.snapshot
    assert (snap.consecutive_failures, snap.opened_at, snap.last_failure) == (5, T0 + 4, "err 4")


def test_a_success_resets_the_consecutive_failure_count() -> None:
    breaker = Breaker()
    for _ in range(4):
        breaker.record_failure(T0, "x")
    breaker.record_success(T0)
    assert breaker.snapshot.consecutive_failures == 0
    for _ in range(4):
        breaker.record_failure(T0, "x")
    assert breaker.state is BreakerState.CLOSED


def test_open_breaker_refuses_until_the_cooldown_and_says_when() -> None:
    breaker = opened()
    for now in (T0, T0 + 1, T0 + 29.999):
        admission = breaker.admit(now)
        assert not admission.allowed
        assert admission.retry_at == T0 + 30.0
    assert breaker.state is BreakerState.OPEN


def test_first_caller_after_the_cooldown_is_the_single_trial() -> None:
    breaker = opened()
    admission = breaker.admit(T0 + 30.0)
    assert admission.allowed and admission.trial
    assert breaker.state is BreakerState.HALF_OPEN
    second = breaker.admit(T0 + 30.0)
    assert not second.allowed
    assert second.retry_at == T0 + 30.0 + BreakerConfig().effective_trial_timeout


def test_trial_success_closes_and_forgets_failures() -> None:
    breaker = half_open()
    assert breaker.record_success(T0 + 31, trial=True) == BreakerTransition(BreakerState.HALF_OPEN, BreakerState.CLOSED)
    snap = breaker.snapshot
    assert (snap.state, snap.consecutive_failures, snap.opened_at, snap.trial_started_at) == \
        (BreakerState.CLOSED, 0, None, None)
    assert breaker.admit(T0 + 31).allowed


def test_trial_failure_reopens_for_a_fresh_cooldown() -> None:
    breaker = half_open()
    assert breaker.record_failure(T0 + 35, "still down", trial=True) == \
        BreakerTransition(BreakerState.HALF_OPEN, BreakerState.OPEN)
    assert breaker.snapshot.opened_at == T0 + 35
    assert breaker.admit(T0 + 64.9).retry_at == T0 + 65
    assert breaker.admit(T0 + 65).trial


def test_outcomes_of_calls_that_were_not_the_trial_are_ignored_while_half_open() -> None:
    breaker = half_open()
    before = breaker.snapshot
    assert breaker.record_success(T0 + 31, trial=False) is None
    assert breaker.record_failure(T0 + 31, "late", trial=False) is None
    assert breaker.snapshot == before


def test_late_outcomes_while_open_change_nothing() -> None:
    breaker = opened()
    before = breaker.snapshot
    assert breaker.record_success(T0 + 1) is None
    assert breaker.record_failure(T0 + 2, "late") is None
    assert breaker.snapshot == before


def test_abandoned_trial_frees_the_slot_for_the_next_caller() -> None:
    breaker = half_open()
    breaker.record_abandoned(T0 + 30.5, trial=True)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.admit(T0 + 30.6).trial


def test_abandoning_a_non_trial_call_keeps_the_trial_in_flight() -> None:
    breaker = half_open()
    breaker.record_abandoned(T0 + 30.5, trial=False)
    assert not breaker.admit(T0 + 30.6).allowed


def test_a_trial_that_never_reports_stops_blocking_after_trial_timeout() -> None:
    breaker = half_open(BreakerConfig(trial_timeout=5.0))
    assert not breaker.admit(T0 + 34.999).allowed
    assert breaker.admit(T0 + 35.0).trial


def test_thresholds_and_cooldown_are_configurable() -> None:
    breaker = opened(BreakerConfig(failure_threshold=2, cooldown=0.5))
    assert breaker.snapshot.consecutive_failures == 2
    assert not breaker.admit(T0 + 0.49).allowed
    assert breaker.admit(T0 + 0.5).trial


def test_zero_cooldown_admits_a_trial_at_once_but_still_only_one() -> None:
    breaker = opened(BreakerConfig(cooldown=0.0))
    assert breaker.admit(T0).trial
    assert not breaker.admit(T0).allowed


def test_reset_closes_from_any_state() -> None:
    breaker = opened()
    assert breaker.reset() == BreakerTransition(BreakerState.OPEN, BreakerState.CLOSED)
    assert breaker.snapshot == BreakerSnapshot()
    assert Breaker().reset() is None


@pytest.mark.parametrize("kwargs", [
    {"failure_threshold": 0}, {"failure_threshold": 2.5}, {"failure_threshold": True},
    {"cooldown": -1.0}, {"cooldown": float("inf")}, {"trial_timeout": 0.0}, {"trial_timeout": float("nan")},
])
def test_invalid_configuration_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        BreakerConfig(**kwargs)  # type: ignore[arg-type]


# The whole transition table: (state, event) -> next state, for trial and non-trial outcomes.
TABLE = [
    (BreakerState.CLOSED, "success", False, BreakerState.CLOSED),
    (BreakerState.CLOSED, "failure<threshold", False, BreakerState.CLOSED),
    (BreakerState.CLOSED, "failure=threshold", False, BreakerState.OPEN),
    (BreakerState.OPEN, "admit<cooldown", False, BreakerState.OPEN),
    (BreakerState.OPEN, "admit>=cooldown", False, BreakerState.HALF_OPEN),
    (BreakerState.OPEN, "success", False, BreakerState.OPEN),
    (BreakerState.OPEN, "failure", False, BreakerState.OPEN),
    (BreakerState.HALF_OPEN, "success", True, BreakerState.CLOSED),
    (BreakerState.HALF_OPEN, "failure", True, BreakerState.OPEN),
    (BreakerState.HALF_OPEN, "success", False, BreakerState.HALF_OPEN),
    (BreakerState.HALF_OPEN, "failure", False, BreakerState.HALF_OPEN),
    (BreakerState.HALF_OPEN, "abandon", True, BreakerState.HALF_OPEN),
    (BreakerState.HALF_OPEN, "admit", False, BreakerState.HALF_OPEN),
]


@pytest.mark.parametrize("start, event, trial, expected", TABLE)
def test_transition_table(start: BreakerState, event: str, trial: bool, expected: BreakerState) -> None:
    breaker = {BreakerState.CLOSED: Breaker, BreakerState.OPEN: opened, BreakerState.HALF_OPEN: half_open}[start]()
    if start is BreakerState.CLOSED and event == "failure=threshold":
        for _ in range(4):
            breaker.record_failure(T0, "x")
    now = T0 + 1
    if event.startswith("success"):
        breaker.record_success(now, trial)
    elif event.startswith("failure"):
        breaker.record_failure(now, "x", trial)
    elif event == "abandon":
        breaker.record_abandoned(now, trial)
    elif event == "admit<cooldown":
        breaker.admit(T0 + 29)
    elif event == "admit>=cooldown":
        breaker.admit(T0 + 30)
    else:
        breaker.admit(T0 + 30)
    assert breaker.state is expected
