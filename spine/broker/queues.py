"""Per-recipient queues: what the broker could not hand to a recipient waits in that
recipient's own bounded queue, so a stalled consumer never delays anyone else.

Pure: no sockets, the caller passes ``now`` (monotonic seconds). The broker's loop offers a
message to ``RecipientQueues`` when the recipient's pipe is full (or its queue is not
empty, to keep order) and takes messages back out with ``peek``/``pop`` as the recipient
reads again.

Bounds: each queue holds at most ``max_messages`` messages and ``max_bytes`` bytes, and all
queues together at most ``total_max_bytes``, so no set of peers can make the broker
allocate without limit. When a message does not fit, its class decides (SPEC §6):

- BULK, COGNITIVE, CONTROL: **refused**, and the sender is told (``Outcome.REFUSED``);
- TELEMETRY: **dropped** and counted (``Outcome.DROPPED``);
- PHYSICS: **conflated**, a stale descriptor being worthless: the oldest queued PHYSICS
  message of that recipient makes room for the newest (``Outcome.CONFLATED``), or, when
  the queue holds none, it is dropped.

A recipient whose queue has stayed full for ``slow_after_s`` is a *slow consumer*
(``check`` reports it once, and once more when it recovers: its queue drained).
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from spine.errors import ConfigError
from spine.protocol.framing import MsgClass


class Outcome(enum.Enum):
    """What ``offer`` did with a message."""

    QUEUED = "queued"
    CONFLATED = "conflated"  # queued; an older PHYSICS message of the recipient was dropped
    REFUSED = "refused"      # not queued; tell the sender (BULK, COGNITIVE, CONTROL)
    DROPPED = "dropped"      # not queued; counted only (TELEMETRY, or PHYSICS with no room)


@dataclass(frozen=True, slots=True)
class SlowConsumer:
    """A recipient became slow (``slow``) or recovered (not ``slow``) at ``at``."""

    recipient: bytes
    slow: bool
    depth: int
    queued_bytes: int
    at: float


@dataclass(slots=True)
class QueueStats:
    """One recipient's queue: what waits, and what happened to what did not fit."""

    depth: int = 0
    queued_bytes: int = 0
    refused: int = 0
    dropped: int = 0
    conflated: int = 0
    slow: bool = False
    slow_events: int = 0  # how many times it became a slow consumer


@dataclass(slots=True)
class _Queue:
    items: deque = field(default_factory=deque)  # (message, size, msg_class)
    bytes: int = 0
    full_since: float | None = None
    stats: QueueStats = field(default_factory=QueueStats)


_REFUSED_CLASSES = frozenset({MsgClass.BULK, MsgClass.COGNITIVE, MsgClass.CONTROL})


class RecipientQueues:
    """Bounded FIFO queues, one per recipient, with a global byte cap."""

    def __init__(self, max_messages: int = 10_000, max_bytes: int = 64 * 1024 * 1024,
                 total_max_bytes: int = 512 * 1024 * 1024, slow_after_s: float = 2.0) -> None:
        if max_messages < 1 or max_bytes < 1 or total_max_bytes < max_bytes \
                or not slow_after_s > 0:
            raise ConfigError(f"recipient queues need max_messages >= 1, max_bytes >= 1, "
                              f"total_max_bytes >= max_bytes and slow_after_s > 0; got "
                              f"{max_messages}, {max_bytes}, {total_max_bytes}, {slow_after_s}")
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.total_max_bytes = total_max_bytes
        self.slow_after_s = slow_after_s
        self._queues: dict[bytes, _Queue] = {}
        self._stats: dict[bytes, QueueStats] = {}  # kept after a queue drains, for status
        self.total_bytes = 0
        self._events: list[SlowConsumer] = []

    def __contains__(self, recipient: bytes) -> bool:
        """True while ``recipient`` has messages waiting (new ones must queue behind them)."""
        return recipient in self._queues

    def __bool__(self) -> bool:
        return bool(self._queues)

    def waiting(self) -> list[bytes]:
        """The recipients with messages waiting, oldest queue first."""
        return list(self._queues)

    def offer(self, recipient: bytes, message: Any, size: int, msg_class: MsgClass,
              now: float) -> Outcome:
        """Queue ``message`` (``size`` bytes, of ``msg_class``) for ``recipient``, or decide
        what happens to it when the queue or the global cap is full."""
        queue = self._queues.get(recipient)
        if queue is None:
            queue = self._queues[recipient] = _Queue(stats=self._stats_of(recipient))
        stats = queue.stats
        if self._fits(queue, size):
            self._push(queue, message, size, msg_class)
            queue.full_since = None
            return Outcome.QUEUED
        self._full(queue, now)
        if msg_class is MsgClass.PHYSICS:
            conflated = self._conflate(queue, size)
            if conflated:
                self._push(queue, message, size, msg_class)
                stats.conflated += conflated
                return Outcome.CONFLATED
            stats.dropped += 1
            self._forget_if_empty(recipient, queue)
            return Outcome.DROPPED
        if msg_class in _REFUSED_CLASSES:
            stats.refused += 1
            self._forget_if_empty(recipient, queue)
            return Outcome.REFUSED
        stats.dropped += 1
        self._forget_if_empty(recipient, queue)
        return Outcome.DROPPED

    def peek(self, recipient: bytes) -> Any:
        """The oldest message waiting for ``recipient`` (KeyError when none waits)."""
        return self._queues[recipient].items[0][0]

    def pop(self, recipient: bytes, now: float) -> Any:
        """Remove and return the oldest message of ``recipient`` (it was delivered)."""
        queue = self._queues[recipient]
        message, size, _ = queue.items.popleft()
        queue.bytes -= size
        self.total_bytes -= size
        queue.stats.depth, queue.stats.queued_bytes = len(queue.items), queue.bytes
        if self._fits(queue, 0):
            queue.full_since = None
        if not queue.items:
            self._recovered(recipient, queue, now)
            del self._queues[recipient]
        return message

    def discard(self, recipient: bytes, now: float) -> int:
        """Drop every message of ``recipient`` (it left); return how many were dropped."""
        queue = self._queues.pop(recipient, None)
        if queue is None:
            return 0
        count = len(queue.items)
        self.total_bytes -= queue.bytes
        queue.stats.dropped += count
        queue.stats.depth = queue.stats.queued_bytes = 0
        self._recovered(recipient, queue, now)
        return count

    def check(self, now: float) -> list[SlowConsumer]:
        """Recipients that became slow consumers by ``now``, and any that recovered since
        the last call (each reported once)."""
        for recipient, queue in self._queues.items():
            stats = queue.stats
            if not stats.slow and queue.full_since is not None \
                    and now - queue.full_since >= self.slow_after_s:
                stats.slow = True
                stats.slow_events += 1
                self._events.append(SlowConsumer(recipient, True, len(queue.items), queue.bytes,
                                                 now))
        events, self._events = self._events, []
        return events

    def next_deadline(self) -> float | None:
        """When ``check`` may next find a slow consumer, or None."""
        times = [q.full_since + self.slow_after_s for q in self._queues.values()
                 if q.full_since is not None and not q.stats.slow]
        return min(times, default=None)

    def stats(self) -> dict[bytes, QueueStats]:
        """Every recipient that ever had a queue, with its counters (live objects: copy them)."""
        return self._stats

    def forget(self, recipient: bytes) -> None:
        """Forget the counters of a recipient with nothing waiting (it left for good)."""
        if recipient not in self._queues:
            self._stats.pop(recipient, None)

    # ---------------------------------------------------------------- internals

    def _stats_of(self, recipient: bytes) -> QueueStats:
        stats = self._stats.get(recipient)
        if stats is None:
            stats = self._stats[recipient] = QueueStats()
        return stats

    def _fits(self, queue: _Queue, size: int) -> bool:
        return (len(queue.items) < self.max_messages and queue.bytes + size <= self.max_bytes
                and self.total_bytes + size <= self.total_max_bytes)

    def _push(self, queue: _Queue, message: Any, size: int, msg_class: MsgClass) -> None:
        queue.items.append((message, size, msg_class))
        queue.bytes += size
        self.total_bytes += size
        queue.stats.depth, queue.stats.queued_bytes = len(queue.items), queue.bytes

    def _conflate(self, queue: _Queue, size: int) -> int:
        """Drop this queue's oldest PHYSICS messages until ``size`` more bytes fit; return
        how many were dropped (0: they would not make room, and none was)."""
        physics = [i for i, item in enumerate(queue.items) if item[2] is MsgClass.PHYSICS]
        freed_bytes = 0
        dropped = []
        for index in physics:
            dropped.append(index)
            freed_bytes += queue.items[index][1]
            count_ok = len(queue.items) - len(dropped) < self.max_messages
            bytes_ok = queue.bytes - freed_bytes + size <= self.max_bytes
            total_ok = self.total_bytes - freed_bytes + size <= self.total_max_bytes
            if count_ok and bytes_ok and total_ok:
                for i in reversed(dropped):
                    _, dropped_size, _ = queue.items[i]
                    del queue.items[i]
                    queue.bytes -= dropped_size
                    self.total_bytes -= dropped_size
                return len(dropped)
        return 0

    def _full(self, queue: _Queue, now: float) -> None:
        if queue.full_since is None:
            queue.full_since = now

    def _recovered(self, recipient: bytes, queue: _Queue, now: float) -> None:
        queue.full_since = None
        if queue.stats.slow:
            queue.stats.slow = False
            self._events.append(SlowConsumer(recipient, False, 0, 0, now))

    def _forget_if_empty(self, recipient: bytes, queue: _Queue) -> None:
        if not queue.items:  # the global cap refused a first message: no queue to keep
            del self._queues[recipient]
