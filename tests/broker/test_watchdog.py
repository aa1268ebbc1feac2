"""The watchdog's thresholds and transitions, driven by a fake clock (no sockets, no sleeps)."""

from __future__ import annotations

import pytest

from spine.broker.watchdog import Liveness, Transition, Watchdog
from spine.errors import ConfigError

T0 = 1000.0


@pytest.fixture
def dog() -> Watchdog:
    w = Watchdog(degrade_after=3.0, dead_after=10.0)
    assert w.heard_from("memory-1", T0) is None
    return w


def test_first_report_tracks_component_as_alive(dog: Watchdog) -> None:
    assert dog.state("memory-1") is Liveness.ALIVE
    assert dog.last_seen("memory-1") == T0
    assert dog.routable("memory-1")
    assert "memory-1" in dog and len(dog) == 1


def test_unknown_component_has_no_state() -> None:
    w = Watchdog()
    assert w.state("ghost") is None
    assert w.last_seen("ghost") is None
    assert not w.routable("ghost")
    assert w.check(T0) == []
    assert w.next_deadline(T0) is None


def test_still_alive_just_before_three_seconds(dog: Watchdog) -> None:
    assert dog.check(T0 + 2.999999) == []
    assert dog.state("memory-1") is Liveness.ALIVE


def test_degraded_at_exactly_three_seconds(dog: Watchdog) -> None:
    assert dog.check(T0 + 3.0) == [
        Transition("memory-1", Liveness.ALIVE, Liveness.DEGRADED, T0 + 3.0, T0)
    ]
    assert dog.state("memory-1") is Liveness.DEGRADED
    assert not dog.routable("memory-1")


def test_degraded_reported_only_once(dog: Watchdog) -> None:
    dog.check(T0 + 3.0)
    assert dog.check(T0 + 5.0) == []


def test_still_degraded_just_before_ten_seconds(dog: Watchdog) -> None:
    dog.check(T0 + 3.0)
    assert dog.check(T0 + 9.999999) == []
    assert dog.state("memory-1") is Liveness.DEGRADED


def test_dead_at_exactly_ten_seconds(dog: Watchdog) -> None:
    dog.check(T0 + 3.0)
    assert dog.check(T0 + 10.0) == [
        Transition("memory-1", Liveness.DEGRADED, Liveness.DEAD, T0 + 10.0, T0)
    ]
    assert dog.state("memory-1") is Liveness.DEAD
    assert dog.check(T0 + 100.0) == []


def test_late_check_reports_both_steps_in_order(dog: Watchdog) -> None:
    changes = dog.check(T0 + 10.0)
    assert [(c.old, c.new) for c in changes] == [
        (Liveness.ALIVE, Liveness.DEGRADED),
        (Liveness.DEGRADED, Liveness.DEAD),
    ]


def test_late_check_between_thresholds_only_degrades(dog: Watchdog) -> None:
    assert [c.new for c in dog.check(T0 + 9.999999)] == [Liveness.DEGRADED]


def test_report_revives_degraded_component(dog: Watchdog) -> None:
    dog.check(T0 + 3.0)
    assert dog.heard_from("memory-1", T0 + 4.0) == Transition(
        "memory-1", Liveness.DEGRADED, Liveness.ALIVE, T0 + 4.0, T0 + 4.0
    )
    assert dog.routable("memory-1")
    assert dog.check(T0 + 6.999999) == []
    assert [c.new for c in dog.check(T0 + 7.0)] == [Liveness.DEGRADED]


def test_report_revives_dead_component(dog: Watchdog) -> None:
    dog.check(T0 + 10.0)
    revived = dog.heard_from("memory-1", T0 + 20.0)
    assert revived is not None
    assert (revived.old, revived.new) == (Liveness.DEAD, Liveness.ALIVE)
    assert dog.state("memory-1") is Liveness.ALIVE


def test_regular_reports_keep_component_alive(dog: Watchdog) -> None:
    for second in range(1, 60):
        assert dog.heard_from("memory-1", T0 + second) is None
        assert dog.check(T0 + second + 0.5) == []
    assert dog.state("memory-1") is Liveness.ALIVE


def test_report_dated_in_the_past_does_not_rewind_last_seen(dog: Watchdog) -> None:
    dog.heard_from("memory-1", T0 + 2.0)
    dog.heard_from("memory-1", T0 + 1.0)
    assert dog.last_seen("memory-1") == T0 + 2.0


def test_report_when_silence_passed_threshold_unobserved_is_not_a_transition(
    dog: Watchdog,
) -> None:
    # check() never ran, so nobody saw it DEGRADED: there is nothing to announce.
    assert dog.heard_from("memory-1", T0 + 5.0) is None
    assert dog.check(T0 + 5.0) == []


def test_components_age_independently() -> None:
    w = Watchdog()
    w.heard_from("a", T0)
    w.heard_from("b", T0 + 2.0)
    assert [(c.name, c.new) for c in w.check(T0 + 3.0)] == [("a", Liveness.DEGRADED)]
    assert [(c.name, c.new) for c in w.check(T0 + 5.0)] == [("b", Liveness.DEGRADED)]
    assert [(c.name, c.new) for c in w.check(T0 + 10.0)] == [("a", Liveness.DEAD)]
    assert [(c.name, c.new) for c in w.check(T0 + 12.0)] == [("b", Liveness.DEAD)]


def test_next_deadline_is_the_earliest_pending_threshold() -> None:
    w = Watchdog()
    w.heard_from("a", T0)
    w.heard_from("b", T0 + 1.0)
    assert w.next_deadline(T0 + 1.0) == T0 + 3.0
    w.check(T0 + 3.0)  # a DEGRADED: next is b's degrade at T0+4
    assert w.next_deadline(T0 + 3.0) == T0 + 4.0
    w.check(T0 + 4.0)  # both DEGRADED: next is a's death at T0+10
    assert w.next_deadline(T0 + 4.0) == T0 + 10.0
    w.check(T0 + 11.0)  # both DEAD: only a report can change anything
    assert w.next_deadline(T0 + 11.0) is None
    w.heard_from("b", T0 + 12.0)
    assert w.next_deadline(T0 + 12.0) == T0 + 15.0


def test_check_before_next_deadline_changes_nothing() -> None:
    w = Watchdog()
    w.heard_from("a", T0)
    deadline = w.next_deadline(T0)
    assert deadline is not None
    assert w.check(deadline - 1e-6) == []
    assert w.check(deadline) != []


def test_forget_stops_tracking(dog: Watchdog) -> None:
    dog.forget("memory-1")
    dog.forget("memory-1")
    assert dog.state("memory-1") is None
    assert dog.check(T0 + 20.0) == []
    assert dog.next_deadline(T0) is None


def test_expect_starts_silence_clock_without_a_report() -> None:
    w = Watchdog()
    assert w.expect("executor", T0) is None
    assert [c.new for c in w.check(T0 + 10.0)] == [Liveness.DEGRADED, Liveness.DEAD]


def test_expect_after_restart_gives_a_dead_component_a_fresh_clock(dog: Watchdog) -> None:
    dog.check(T0 + 10.0)
    revived = dog.expect("memory-1", T0 + 16.0)
    assert revived is not None and revived.new is Liveness.ALIVE
    assert dog.check(T0 + 18.999999) == []
    assert [c.new for c in dog.check(T0 + 26.0)] == [Liveness.DEGRADED, Liveness.DEAD]


def test_snapshot_lists_components_sorted_with_silence() -> None:
    w = Watchdog()
    w.heard_from("zeta", T0)
    w.heard_from("alpha", T0 + 1.0)
    w.check(T0 + 3.5)
    rows = w.snapshot(T0 + 3.5)
    assert [(r.name, r.state, r.last_seen, r.silent_for) for r in rows] == [
        ("alpha", Liveness.ALIVE, T0 + 1.0, 2.5),
        ("zeta", Liveness.DEGRADED, T0, 3.5),
    ]


@pytest.mark.parametrize(
    ("degrade", "dead"), [(0.0, 10.0), (-1.0, 10.0), (3.0, 3.0), (5.0, 3.0), (3.0, float("inf"))]
)
def test_inconsistent_thresholds_are_refused(degrade: float, dead: float) -> None:
    with pytest.raises(ConfigError, match="watchdog thresholds"):
        Watchdog(degrade_after=degrade, dead_after=dead)


def test_custom_thresholds_are_honoured() -> None:
    w = Watchdog(degrade_after=0.2, dead_after=0.5)
    w.heard_from("a", 0.0)
    assert [c.new for c in w.check(0.2)] == [Liveness.DEGRADED]
    assert [c.new for c in w.check(0.5)] == [Liveness.DEAD]


def test_a_component_reporting_its_loop_stuck_is_degraded_at_once_and_dies_on_time():
    from spine.broker.watchdog import Liveness, Watchdog
    dog = Watchdog(degrade_after=3.0, dead_after=10.0)
    dog.heard_from("w", 0.0)
    change = dog.reported_degraded("w", 1.0)
    assert (change.old, change.new, change.at) == (Liveness.ALIVE, Liveness.DEGRADED, 1.0)
    assert dog.reported_degraded("w", 2.0) is None and not dog.routable("w")
    assert dog.check(9.9) == []
    [dead] = dog.check(10.0)  # dead_after after its last healthy report, not the stuck one
    assert dead.new is Liveness.DEAD
    assert dog.reported_degraded("w", 11.0) is None and dog.state("w") is Liveness.DEAD
    assert dog.heard_from("w", 12.0).new is Liveness.ALIVE
    assert dog.reported_degraded("new", 5.0) is None and dog.state("new") is Liveness.DEGRADED
