"""Temporal coherence (SPEC §2): drop, and count, messages older than their class allows.

Age limits: physics 113 µs, cognitive state 10 ms, control/admin 100 ms; a message dated
more than 50 µs in the future is rejected too. All configurable via :class:`CoherenceLimits`.

Two clocks. The 50 µs future limit holds where sender and receiver read *one* clock (the
shm path: a frame's writer and its readers share the host). An envelope may come from any
host through the broker, so its future limit adds ``host_offset_ns``: the largest offset
the deployment's clock sync keeps between two hosts (default 1 ms: chrony on a LAN holds
tens of µs, PTP under 1 µs; set ``SPINE_CLOCK_OFFSET_US`` to what ``chronyc tracking``
reports, with margin). Pass ``cross_host=True`` for envelopes.

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
import math
import os
import threading
from dataclasses import dataclass

from spine.errors import ConfigError, StaleMessageError
from spine.protocol import neural_spike_pb2 as pb


OFFSET_ENV = "SPINE_CLOCK_OFFSET_US"
"""The environment variable that sets the cross-host clock allowance, in µs."""

MAX_HOST_OFFSET_NS = 1_000_000_000


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
    """Maximum age per class, the tolerated future skew on one clock, and the clock offset
    tolerated between hosts, in nanoseconds."""

    physics_ns: int = 113_000
    cognitive_ns: int = 10_000_000
    control_ns: int = 100_000_000
    future_skew_ns: int = 50_000
    host_offset_ns: int = 1_000_000

    def __post_init__(self) -> None:
        if not 0 <= self.host_offset_ns <= MAX_HOST_OFFSET_NS:
            raise ConfigError(f"host_offset_ns must be 0..{MAX_HOST_OFFSET_NS} (1 s), got "
                              f"{self.host_offset_ns!r}; a larger offset means the clocks are "
                              "not synchronised at all: fix chrony or PTP instead")
        for field in ("physics_ns", "cognitive_ns", "control_ns", "future_skew_ns"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"coherence limit {field} must be an integer number of ns >= 0, got {value!r}")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "CoherenceLimits":
        """The defaults, with ``host_offset_ns`` from ``SPINE_CLOCK_OFFSET_US`` if it is set.

        Raises ConfigError naming the variable when its value is not a number of µs in
        0..1,000,000.
        """
        raw = (os.environ if environ is None else environ).get(OFFSET_ENV, "").strip()
        if not raw:
            return cls()
        try:
            micros = float(raw)
        except ValueError:
            micros = math.nan
        if not (math.isfinite(micros) and 0 <= micros <= MAX_HOST_OFFSET_NS / 1000):
            raise ConfigError(f"{OFFSET_ENV}={raw!r}: expected the largest clock offset between "
                              f"two hosts in µs, 0 to {MAX_HOST_OFFSET_NS // 1000}")
        return cls(host_offset_ns=round(micros * 1000))

    def future_ns(self, cross_host: bool) -> int:
        """How far in the future a message may be dated: one clock, or two hosts' clocks."""
        return self.future_skew_ns + (self.host_offset_ns if cross_host else 0)

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
          received_ns: int, *, cross_host: bool = False) -> DropReason | None:
    """Why a message created at ``created_ns`` and received at ``received_ns`` must be
    dropped, or None. ``cross_host``: the two times may come from two hosts' clocks."""
    age = received_ns - created_ns
    if age > limits.max_age_ns(message_class):
        return DropReason.STALE
    if -age > limits.future_ns(cross_host):
        return DropReason.FUTURE
    return None


class CoherenceChecker:
    """Applies the limits and counts accepted and dropped messages per class (and reason); thread-safe."""

    def __init__(self, limits: CoherenceLimits | None = None) -> None:
        self.limits = limits or CoherenceLimits()
        self._lock = threading.Lock()
        self._accepted = {c: 0 for c in MessageClass}
        self._drops = {(c, r): 0 for c in MessageClass for r in DropReason}

    def admit(self, message_class: MessageClass, created_ns: int, received_ns: int, *,
              cross_host: bool = False) -> bool:
        """True if the message is fresh enough to handle; a drop is counted and answered False.

        ``cross_host``: the creation time was read on another host's clock (an envelope)."""
        reason = judge(self.limits, message_class, created_ns, received_ns,
                       cross_host=cross_host)
        with self._lock:
            if reason is None:
                self._accepted[message_class] += 1
            else:
                self._drops[(message_class, reason)] += 1
        return reason is None

    def require(self, message_class: MessageClass, created_ns: int, received_ns: int, *,
                cross_host: bool = False) -> None:
        """Like :meth:`admit`, but a dropped message raises :class:`~spine.errors.StaleMessageError`."""
        if not self.admit(message_class, created_ns, received_ns, cross_host=cross_host):
            age_us = (received_ns - created_ns) / 1000
            raise StaleMessageError(
                f"{message_class.value} message dropped: age {age_us:.1f} µs, allowed "
                f"{self.limits.max_age_ns(message_class) / 1000:.1f} µs old to "
                f"{self.limits.future_ns(cross_host) / 1000:.1f} µs in the future; check clock "
                f"sync ({OFFSET_ENV}) and queueing")

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
