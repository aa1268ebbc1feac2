"""Per-recipient queues: bounds in messages and bytes, a global cap, what each class does
when full, slow consumers found and recovered. Pure: no sockets, an injected clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spine.broker.queues import Outcome, RecipientQueues, SlowConsumer
from spine.errors import ConfigError
from spine.protocol.framing import MsgClass

A, B = b"slow", b"fast"


def fill(q: RecipientQueues, recipient: bytes, count: int, size: int = 10,
         cls: MsgClass = MsgClass.BULK, now: float = 0.0) -> list[Outcome]:
    return [q.offer(recipient, (recipient, i), size, cls, now) for i in range(count)]


def test_messages_wait_in_order_and_come_out_in_order() -> None:
    q = RecipientQueues(max_messages=5)
    assert fill(q, A, 3) == [Outcome.QUEUED] * 3
    assert A in q and B not in q and q.waiting() == [A]
    assert [q.pop(A, 1.0) for _ in range(3)] == [(A, 0), (A, 1), (A, 2)]
    assert A not in q and not q and q.total_bytes == 0


@pytest.mark.parametrize("cls", [MsgClass.BULK, MsgClass.COGNITIVE, MsgClass.CONTROL])
def test_a_full_queue_refuses_bulk_cognitive_and_control(cls: MsgClass) -> None:
    q = RecipientQueues(max_messages=2)
    assert fill(q, A, 3, cls=cls) == [Outcome.QUEUED, Outcome.QUEUED, Outcome.REFUSED]
    assert q.stats()[A].refused == 1 and q.stats()[A].depth == 2


def test_a_full_queue_drops_telemetry_and_counts_it() -> None:
    q = RecipientQueues(max_messages=1)
    assert fill(q, A, 3, cls=MsgClass.TELEMETRY)[1:] == [Outcome.DROPPED] * 2
    assert q.stats()[A].dropped == 2


def test_a_full_queue_conflates_physics_keeping_the_newest() -> None:
    q = RecipientQueues(max_messages=3)
    q.offer(A, "bulk", 10, MsgClass.BULK, 0.0)
    q.offer(A, "p0", 10, MsgClass.PHYSICS, 0.0)
    q.offer(A, "p1", 10, MsgClass.PHYSICS, 0.0)
    assert q.offer(A, "p2", 10, MsgClass.PHYSICS, 0.0) is Outcome.CONFLATED
    assert [q.pop(A, 0.0) for _ in range(3)] == ["bulk", "p1", "p2"]
    assert q.stats()[A].conflated == 1


def test_physics_with_nothing_to_conflate_is_dropped() -> None:
    q = RecipientQueues(max_messages=1)
    q.offer(A, "bulk", 10, MsgClass.BULK, 0.0)
    assert q.offer(A, "p", 10, MsgClass.PHYSICS, 0.0) is Outcome.DROPPED
    assert q.pop(A, 0.0) == "bulk"


def test_the_byte_bound_holds_per_recipient() -> None:
    q = RecipientQueues(max_bytes=100, total_max_bytes=1000)
    assert fill(q, A, 11) == [Outcome.QUEUED] * 10 + [Outcome.REFUSED]
    assert q.stats()[A].queued_bytes == 100
    assert fill(q, B, 1) == [Outcome.QUEUED]  # another recipient is not affected


def test_the_global_cap_holds_across_recipients() -> None:
    q = RecipientQueues(max_bytes=100, total_max_bytes=150)
    fill(q, A, 10)
    assert fill(q, B, 6) == [Outcome.QUEUED] * 5 + [Outcome.REFUSED]
    assert q.total_bytes == 150
    q.pop(A, 0.0)
    assert fill(q, B, 1) == [Outcome.QUEUED]


def test_a_queue_full_for_slow_after_s_is_a_slow_consumer_once_until_it_recovers() -> None:
    q = RecipientQueues(max_messages=2, slow_after_s=2.0)
    fill(q, A, 3, now=10.0)  # the third finds it full at 10.0
    assert q.next_deadline() == 12.0
    assert q.check(11.9) == []
    assert q.check(12.0) == [SlowConsumer(A, True, 2, 20, 12.0)]
    assert q.check(20.0) == []  # reported once
    assert q.stats()[A].slow and q.stats()[A].slow_events == 1
    q.pop(A, 21.0)
    q.pop(A, 21.0)
    assert q.check(21.0) == [SlowConsumer(A, False, 0, 0, 21.0)]
    assert not q.stats()[A].slow


def test_a_queue_that_is_merely_busy_is_not_slow() -> None:
    q = RecipientQueues(max_messages=2, slow_after_s=2.0)
    fill(q, A, 3, now=0.0)
    q.pop(A, 1.0)  # it reads: no longer full
    fill(q, A, 1, now=1.5)
    assert q.check(5.0) == [] and q.next_deadline() is None


def test_discard_drops_and_counts_what_waited() -> None:
    q = RecipientQueues()
    fill(q, A, 4)
    assert q.discard(A, 0.0) == 4 and A not in q and q.total_bytes == 0
    assert q.stats()[A].dropped == 4
    assert q.discard(A, 0.0) == 0


@pytest.mark.parametrize("kwargs", [{"max_messages": 0}, {"max_bytes": 0},
                                    {"max_bytes": 10, "total_max_bytes": 5},
                                    {"slow_after_s": 0}, {"slow_after_s": float("nan")}])
def test_nonsense_bounds_are_a_config_error(kwargs) -> None:
    with pytest.raises(ConfigError):
        RecipientQueues(**kwargs)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([A, B]), st.sampled_from(list(MsgClass)),
                          st.integers(1, 40), st.booleans()), max_size=80))
def test_bounds_hold_and_order_is_kept_whatever_happens(ops) -> None:
    q = RecipientQueues(max_messages=5, max_bytes=100, total_max_bytes=150)
    expected: dict[bytes, list] = {A: [], B: []}
    for n, (who, cls, size, pop) in enumerate(ops):
        if pop and who in q:
            assert q.pop(who, 0.0) == expected[who].pop(0)[0]
            continue
        outcome = q.offer(who, n, size, cls, 0.0)
        if outcome is Outcome.CONFLATED:  # the oldest physics messages made room
            mine = expected[who]
            total = sum(e[1] for r in (A, B) for e in expected[r])
            while not (len(mine) < 5 and sum(e[1] for e in mine) + size <= 100
                       and total + size <= 150):
                oldest = next(i for i, e in enumerate(mine) if e[2] is MsgClass.PHYSICS)
                total -= mine.pop(oldest)[1]
        if outcome in (Outcome.QUEUED, Outcome.CONFLATED):
            expected[who].append((n, size, cls))
        for r in (A, B):
            stats = q.stats().get(r)
            depth = stats.depth if stats and r in q else 0
            assert depth == len(expected[r]) <= 5
            assert (stats.queued_bytes if r in q else 0) == sum(s for _, s, _ in expected[r])
        assert q.total_bytes <= 150
        assert q.total_bytes == sum(s for r in (A, B) for _, s, _ in expected[r])
