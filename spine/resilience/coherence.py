"""Temporal coherence (SPEC §2): drop, and count, messages older than their class allows.

Age limits: physics 113 µs, cognitive state 10 ms, control/admin 100 ms; a message dated
more than 50 µs in the future is rejected too. All configurable via :class:`CoherenceLimits`.

Times are integer **nanoseconds**, and the caller passes both the creation time and the
receive time, read from the *same* clock:

* envelopes: ``NeuralSpike.timestamp`` is Unix milliseconds, so pass
  :func:`spike_created_ns` and ``time.time_ns()``. Millisecond resolution makes a message
  look up to 1 ms older than it is (never younger, so it is never falsely "future");
  good enough for the 10 ms and 100 ms classes, useless for the physics class;
* physics frames: pass ``WaveformSHM.timestamp_ns`` (the tick, as the writer stamped it)
  and a receive time from the writer's clock (``time.time_ns()`` for CLOCK_REALTIME,
  ``time.monotonic_ns()`` for CLOCK_MONOTONIC on the same host).
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass

from spine.errors import ConfigError, StaleMessageError
from spine.protocol import neural_spike_pb2 as pb


class MessageClass(str, enum.Enum):
    """The freshness classes of SPEC §2."""

    PHYSICS = "physics"
    COGNITIVE = "cognitive"
    CONTROL = "control"


class DropReason(str, enum.Enum):
    """Why a message was dropped: too old, or dated too far in the future."""

    STALE = "stale"
    FUTURE = "future"


@dataclass(frozen=True)
class CoherenceLimits:
    """Maximum age per class and the tolerated future skew, in nanoseconds."""

    physics_ns: int = 113_000
    cognitive_ns: int = 10_000_000
    control_ns: int = 100_000_000
    future_skew_ns: int = 50_000

    def __post_init__(self) -> None:
        for field in ("physics_ns", "cognitive_ns", "control_ns", "future_skew_ns"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"coherence limit {field} must be an integer number of ns >= 0, got {value!r}")

    def max_age_ns(self, message_class: MessageClass) -> int:
        """The age limit of ``message_class``."""
        if message_class is MessageClass.PHYSICS:
            return self.physics_ns
        if message_class is MessageClass.COGNITIVE:
            return self.cognitive_ns
        return self.control_ns


def spike_created_ns(spike: pb.NeuralSpike) -> int:
    """An envelope's creation time in Unix ns (its ``timestamp`` is Unix ms)."""
    return spike.timestamp * 1_000_000


def judge(limits: CoherenceLimits, message_class: MessageClass, created_ns: int,
          received_ns: int) -> DropReason | None:
    """Why a message created at ``created_ns`` and received at ``received_ns`` must be dropped, or None."""
    age = received_ns - created_ns
    if age > limits.max_age_ns(message_class):
        return DropReason.STALE
    if -age > limits.future_skew_ns:
        return DropReason.FUTURE
    return None


class CoherenceChecker:
    """Applies the limits and counts accepted and dropped messages per class (and reason); thread-safe."""

    def __init__(self, limits: CoherenceLimits | None = None) -> None:
        self.limits = limits or CoherenceLimits()
        self._lock = threading.Lock()
        self._accepted = {c: 0 for c in MessageClass}
        self._drops = {(c, r): 0 for c in MessageClass for r in DropReason}

    def admit(self, message_class: MessageClass, created_ns: int, received_ns: int) -> bool:
        """True if the message is fresh enough to handle; a drop is counted and answered False."""
        reason = judge(self.limits, message_class, created_ns, received_ns)
        with self._lock:
            if reason is None:
                self._accepted[message_class] += 1
            else:
                self._drops[(message_class, reason)] += 1
        return reason is None

    def require(self, message_class: MessageClass, created_ns: int, received_ns: int) -> None:
        """Like :meth:`admit`, but a dropped message raises :class:`~spine.errors.StaleMessageError`."""
        if not self.admit(message_class, created_ns, received_ns):
            age_us = (received_ns - created_ns) / 1000
            raise StaleMessageError(
                f"{message_class.value} message dropped: age {age_us:.1f} µs, allowed "
                f"{self.limits.max_age_ns(message_class) / 1000:.1f} µs old to "
                f"{self.limits.future_skew_ns / 1000:.1f} µs in the future; check clock sync and queueing")

    def accepted(self, message_class: MessageClass) -> int:
        """How many messages of ``message_class`` were fresh."""
        with self._lock:
            return self._accepted[message_class]

    def dropped(self, message_class: MessageClass, reason: DropReason | None = None) -> int:
        """How many messages of ``message_class`` were dropped (for ``reason``, or for any)."""
        with self._lock:
            if reason is not None:
                return self._drops[(message_class, reason)]
            return sum(n for (c, _), n in self._drops.items() if c is message_class)

    def counts(self) -> dict[str, dict[str, int]]:
        """All counters as ``{class: {"accepted": n, "stale": n, "future": n}}`` (for telemetry)."""
        with self._lock:
            return {c.value: {"accepted": self._accepted[c],
                              **{r.value: self._drops[(c, r)] for r in DropReason}}
                    for c in MessageClass}
