"""The pure part of liveliness: what a heartbeat may claim about a component's loop."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from spine.client.liveliness import Beat, Liveliness, LoopWatch
from spine.errors import ConfigError


def test_automatic_liveliness_always_says_ready():
    watch = LoopWatch(Liveliness.AUTOMATIC, now=0.0, stuck_after_s=1.0)
    assert [watch.beat(t) for t in (0.0, 1.0, 5.0, 1e6)] == [Beat.READY] * 4
    assert watch.stalled(5.0) == 5.0  # still reported, for people


def test_manual_liveliness_turns_degraded_then_silent_when_the_loop_stops():
    watch = LoopWatch(Liveliness.MANUAL, now=10.0, stuck_after_s=2.0)
    assert watch.beat(11.99) is Beat.READY
    assert watch.beat(12.0) is Beat.DEGRADED      # thresholds are inclusive
    assert watch.beat(13.99) is Beat.DEGRADED
    assert watch.beat(14.0) is Beat.SILENT
    watch.ran(20.0)
    assert watch.beat(20.5) is Beat.READY and watch.stalled(20.5) == 0.5


def test_waiting_for_a_message_is_not_being_stuck():
    watch = LoopWatch(Liveliness.MANUAL, now=0.0, stuck_after_s=1.0)
    watch.waiting(0.5)
    assert watch.beat(100.0) is Beat.READY and watch.stalled(100.0) == 0.0
    watch.done_waiting(100.0)
    assert watch.beat(100.5) is Beat.READY
    assert watch.beat(101.0) is Beat.DEGRADED   # a handler stuck after the message came


def test_nested_waits_count_until_the_outer_one_ends():
    watch = LoopWatch(Liveliness.MANUAL, now=0.0, stuck_after_s=1.0)
    watch.waiting(0.0)
    watch.waiting(0.0)
    watch.done_waiting(0.1)
    assert watch.beat(50.0) is Beat.READY
    watch.done_waiting(50.0)
    watch.done_waiting(50.0)  # an unmatched end never goes negative
    assert watch.beat(51.0) is Beat.DEGRADED


@given(st.lists(st.tuples(st.sampled_from(["ran", "wait", "done"]),
                          st.floats(0, 100, allow_nan=False)), max_size=30),
       st.floats(0, 200, allow_nan=False))
def test_the_beat_follows_the_time_stalled(events, now):
    watch = LoopWatch(Liveliness.MANUAL, now=0.0, stuck_after_s=2.0)
    clock = 0.0
    for action, dt in events:
        clock += dt / 10
        {"ran": watch.ran, "wait": watch.waiting, "done": watch.done_waiting}[action](clock)
    at = clock + now
    stalled = watch.stalled(at)
    assert stalled >= 0
    expected = Beat.SILENT if stalled >= 4.0 else Beat.DEGRADED if stalled >= 2.0 else Beat.READY
    assert watch.beat(at) is expected


@pytest.mark.parametrize("value, mode", [("", Liveliness.AUTOMATIC), ("manual", Liveliness.MANUAL),
                                         ("Automatic", Liveliness.AUTOMATIC),
                                         (" MANUAL ", Liveliness.MANUAL)])
def test_the_mode_comes_from_spine_liveliness(value, mode):
    assert Liveliness.from_env({"SPINE_LIVELINESS": value}) is mode
    assert Liveliness.from_env({}) is Liveliness.AUTOMATIC


def test_a_bad_mode_or_threshold_is_a_config_error():
    with pytest.raises(ConfigError, match="SPINE_LIVELINESS='sometimes'") as caught:
        Liveliness.from_env({"SPINE_LIVELINESS": "sometimes"})
    assert caught.value.key == "SPINE_LIVELINESS"
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="stuck_after_s"):
            LoopWatch(Liveliness.MANUAL, now=0.0, stuck_after_s=bad)
