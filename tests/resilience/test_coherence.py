"""Temporal coherence: per-class age limits and future skew, with drops counted per class and reason."""

from __future__ import annotations

import threading

import pytest

from spine.errors import ConfigError, StaleMessageError
from spine.protocol import neural_spike_pb2 as pb
from spine.resilience.coherence import (CoherenceChecker, CoherenceLimits, DropReason, MessageClass,
                                        spike_created_ns)

NOW = 1_900_000_000_000_000_000  # an arbitrary Unix time in ns


def test_default_limits_are_the_spec_numbers() -> None:
    limits = CoherenceLimits()
    assert limits.max_age_ns(MessageClass.PHYSICS) == 113_000
    assert limits.max_age_ns(MessageClass.COGNITIVE) == 10_000_000
    assert limits.max_age_ns(MessageClass.CONTROL) == 100_000_000
    assert limits.future_skew_ns == 50_000


@pytest.mark.parametrize("message_class, limit", [
    (MessageClass.PHYSICS, 113_000), (MessageClass.COGNITIVE, 10_000_000), (MessageClass.CONTROL, 100_000_000),
])
def test_a_message_at_its_age_limit_passes_and_one_nanosecond_older_is_dropped_as_stale(
        message_class: MessageClass, limit: int) -> None:
    checker = CoherenceChecker()
    assert checker.admit(message_class, NOW - limit, NOW)
    assert not checker.admit(message_class, NOW - limit - 1, NOW)
    assert checker.dropped(message_class, DropReason.STALE) == 1
    assert checker.dropped(message_class, DropReason.FUTURE) == 0
    assert checker.accepted(message_class) == 1


@pytest.mark.parametrize("message_class", list(MessageClass))
def test_more_than_50_us_in_the_future_is_dropped_in_every_class(message_class: MessageClass) -> None:
    checker = CoherenceChecker()
    assert checker.admit(message_class, NOW + 50_000, NOW)
    assert not checker.admit(message_class, NOW + 50_001, NOW)
    assert checker.dropped(message_class, DropReason.FUTURE) == 1


def test_drops_are_counted_per_class_and_reason() -> None:
    checker = CoherenceChecker()
    checker.admit(MessageClass.PHYSICS, NOW - 200_000, NOW)
    checker.admit(MessageClass.PHYSICS, NOW - 300_000, NOW)
    checker.admit(MessageClass.COGNITIVE, NOW + 1_000_000, NOW)
    checker.admit(MessageClass.CONTROL, NOW - 1_000, NOW)
    assert checker.counts() == {
        "physics": {"accepted": 0, "stale": 2, "future": 0},
        "cognitive": {"accepted": 0, "stale": 0, "future": 1},
        "control": {"accepted": 1, "stale": 0, "future": 0},
    }
    assert checker.dropped(MessageClass.PHYSICS) == 2


def test_limits_are_configurable() -> None:
    checker = CoherenceChecker(CoherenceLimits(cognitive_ns=20_000_000, future_skew_ns=0))
    assert checker.admit(MessageClass.COGNITIVE, NOW - 15_000_000, NOW)
    assert not checker.admit(MessageClass.COGNITIVE, NOW + 1, NOW)


def test_require_raises_stale_message_error_saying_age_and_limit() -> None:
    checker = CoherenceChecker()
    with pytest.raises(StaleMessageError, match=r"physics message dropped: age 500\.0 µs, allowed 113\.0 µs"):
        checker.require(MessageClass.PHYSICS, NOW - 500_000, NOW)
    checker.require(MessageClass.CONTROL, NOW - 500_000, NOW)
    assert checker.dropped(MessageClass.PHYSICS, DropReason.STALE) == 1


def test_envelope_timestamp_in_ms_converts_to_ns() -> None:
    spike = pb.NeuralSpike(request_id="r", timestamp=1_700_000_000_123)
    assert spike_created_ns(spike) == 1_700_000_000_123_000_000


def test_envelope_from_12_ms_ago_is_stale_as_cognitive_but_fresh_as_control() -> None:
    spike = pb.NeuralSpike(request_id="r", timestamp=NOW // 1_000_000 - 12)
    checker = CoherenceChecker()
    assert not checker.admit(MessageClass.COGNITIVE, spike_created_ns(spike), NOW)
    assert checker.admit(MessageClass.CONTROL, spike_created_ns(spike), NOW)


@pytest.mark.parametrize("field", ["physics_ns", "cognitive_ns", "control_ns", "future_skew_ns"])
def test_negative_or_fractional_limits_are_refused(field: str) -> None:
    for bad in (-1, 1.5):
        with pytest.raises(ConfigError):
            CoherenceLimits(**{field: bad})  # type: ignore[arg-type]


def test_counting_is_exact_from_many_threads() -> None:
    checker = CoherenceChecker()

    def work() -> None:
        for _ in range(2000):
            checker.admit(MessageClass.PHYSICS, NOW - 1_000_000, NOW)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert checker.dropped(MessageClass.PHYSICS, DropReason.STALE) == 8000


def test_envelopes_from_another_host_get_the_clock_offset_allowance() -> None:
    checker = CoherenceChecker(CoherenceLimits(host_offset_ns=500_000))
    assert not checker.admit(MessageClass.CONTROL, NOW + 60_000, NOW)  # one clock: 50 µs
    assert checker.admit(MessageClass.CONTROL, NOW + 550_000, NOW, cross_host=True)
    assert not checker.admit(MessageClass.CONTROL, NOW + 550_001, NOW, cross_host=True)
    with pytest.raises(StaleMessageError, match=r"550\.0 µs in the future.*SPINE_CLOCK_OFFSET_US"):
        checker.require(MessageClass.CONTROL, NOW + 600_000, NOW, cross_host=True)


def test_the_clock_offset_allowance_comes_from_the_environment() -> None:
    assert CoherenceLimits.from_env({}).host_offset_ns == 1_000_000
    assert CoherenceLimits.from_env({"SPINE_CLOCK_OFFSET_US": "250"}).host_offset_ns == 250_000
    assert CoherenceLimits.from_env({"SPINE_CLOCK_OFFSET_US": "0"}).future_ns(True) == 50_000


@pytest.mark.parametrize("raw", ["-1", "nan", "inf", "2e6", "fast"])
def test_a_bad_clock_offset_is_a_config_error_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match=f"SPINE_CLOCK_OFFSET_US={raw!r}"):
        CoherenceLimits.from_env({"SPINE_CLOCK_OFFSET_US": raw})
    with pytest.raises(ConfigError, match="host_offset_ns"):
        CoherenceLimits(host_offset_ns=-1)
