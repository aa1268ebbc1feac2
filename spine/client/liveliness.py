"""Whether a component's own loop still runs: what its heartbeat may claim.

A heartbeat thread alone proves only that the process lives: its main thread can be frozen
(a deadlock, a handler stuck in I/O) while heartbeats go on saying READY. ROS 2 draws the
line spine draws here:

- **automatic** liveliness: the process is alive, so the component is. The heartbeat always
  says READY and reports how long the loop has not run (``loop_stalled_s``), for people.
- **manual** liveliness: the application asserts it. The component's loop does so by
  running: every ``recv``, ``serve`` turn, ``send`` and ``request`` counts, and time spent
  blocked *waiting* for a message counts as running (nothing is stuck while it waits).
  A long computation asserts it with ``Component.assert_alive()``. When the loop has not
  run for ``stuck_after_s``, heartbeats say DEGRADED (the broker stops routing to it at
  once); after twice that they stop, so the broker's watchdog declares it DEAD and, if it
  supervises it, revives it.

Manual is the default for components the broker supervises (it sets ``SPINE_LIVELINESS=
manual`` in their environment); automatic is the default elsewhere, so a script that only
publishes is never declared stuck. :class:`LoopWatch` is the pure part: it is fed the
loop's events and a clock reading, and says what the heartbeat should do.
"""

from __future__ import annotations

import enum
import math
import os

from spine.errors import ConfigError

ENV_VAR = "SPINE_LIVELINESS"
STUCK_AFTER_S = 2.0


class Liveliness(enum.Enum):
    """Who vouches that a component is alive (ROS 2's liveliness kinds)."""

    AUTOMATIC = "automatic"   # the process: heartbeats go on whatever the main loop does
    MANUAL = "manual"         # the component's loop: a stuck loop turns DEGRADED, then silent

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Liveliness":
        """``$SPINE_LIVELINESS`` (``automatic`` or ``manual``); automatic when unset."""
        value = (os.environ if environ is None else environ).get(ENV_VAR, "").strip().lower()
        if not value:
            return cls.AUTOMATIC
        try:
            return cls(value)
        except ValueError:
            raise ConfigError(f"{ENV_VAR}={value!r}: expected 'automatic' or 'manual'",
                              key=ENV_VAR, value=value, allowed="automatic, manual") from None


class Beat(enum.Enum):
    """What the next heartbeat should say."""

    READY = "ready"
    DEGRADED = "degraded"   # the loop is stuck: route nothing to me
    SILENT = "silent"       # stuck for long: send nothing, so the watchdog declares me DEAD


class LoopWatch:
    """The progress of a component's loop, from the events it reports; no clock of its own.

    ``ran(now)`` marks a turn of the loop; ``waiting(now)`` / ``done_waiting(now)`` bracket
    a blocking wait for messages, during which the loop counts as running. Thread-safe
    enough for its use: one thread writes floats, the heartbeat thread reads them.
    """

    def __init__(self, mode: Liveliness, now: float, stuck_after_s: float = STUCK_AFTER_S) -> None:
        if not (math.isfinite(stuck_after_s) and stuck_after_s > 0):
            raise ConfigError(f"stuck_after_s={stuck_after_s!r}: must be a positive number of "
                              "seconds", key="stuck_after_s", value=stuck_after_s,
                              allowed="> 0, finite")
        self.mode = mode
        self.stuck_after_s = stuck_after_s
        self._last_ran = now
        self._waiting = 0  # nested waits (recv inside serve)

    def ran(self, now: float) -> None:
        """The loop made progress at ``now``."""
        self._last_ran = now

    def waiting(self, now: float) -> None:
        """The loop starts blocking for a message at ``now``."""
        self._waiting += 1
        self._last_ran = now

    def done_waiting(self, now: float) -> None:
        """The wait begun by :meth:`waiting` ended at ``now``."""
        self._waiting = max(0, self._waiting - 1)
        self._last_ran = now

    def stalled(self, now: float) -> float:
        """Seconds the loop has neither run nor waited for a message (0 while it waits)."""
        return 0.0 if self._waiting else max(0.0, now - self._last_ran)

    def beat(self, now: float) -> Beat:
        """What the heartbeat at ``now`` should say."""
        if self.mode is Liveliness.AUTOMATIC:
            return Beat.READY
        stalled = self.stalled(now)
        if stalled >= 2 * self.stuck_after_s:
            return Beat.SILENT
        if stalled >= self.stuck_after_s:
            return Beat.DEGRADED
        return Beat.READY
