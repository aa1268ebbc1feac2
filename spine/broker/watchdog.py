"""Liveness of components from their heartbeats: ALIVE → DEGRADED → DEAD → ALIVE.

A pure state machine in the h11 manner: it owns no socket and reads no clock. The broker
feeds it every StatusReport (`heard_from`) and asks it, on each turn of its loop, what
changed (`check`) and when the next change can happen (`next_deadline`, the poll timeout).

Thresholds are inclusive: a component silent for exactly `degrade_after` seconds is
DEGRADED, silent for exactly `dead_after` seconds is DEAD (SPEC §4: 3 s and 10 s).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from spine.errors import ConfigError

__all__ = ["Liveness", "Transition", "LivenessRecord", "Watchdog"]


class Liveness(enum.Enum):
    """What the broker believes about a component, from how long it has been silent."""

    ALIVE = "alive"
    DEGRADED = "degraded"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Transition:
    """A component changed liveness state at monotonic time `at`.

    `last_seen` is the monotonic time of its last report (or of `expect`), so
    `at - last_seen` is how long it had been silent when the change was noticed.
    """

    name: str
    old: Liveness
    new: Liveness
    at: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class LivenessRecord:
    """One row of the watchdog's snapshot, for `spine status`."""

    name: str
    state: Liveness
    last_seen: float
    silent_for: float


class _Entry:
    __slots__ = ("state", "last_seen")

    def __init__(self, state: Liveness, last_seen: float) -> None:
        self.state = state
        self.last_seen = last_seen


class Watchdog:
    """Tracks the last-seen time of each named component and derives its liveness.

    Every method takes `now` in monotonic seconds; nothing here reads a clock.
    A name is tracked from its first report (or `expect`) until `forget`.
    """

    def __init__(self, degrade_after: float = 3.0, dead_after: float = 10.0) -> None:
        if not (math.isfinite(degrade_after) and math.isfinite(dead_after)):
            raise ConfigError("watchdog thresholds must be finite numbers of seconds")
        if not 0 < degrade_after < dead_after:
            raise ConfigError(
                f"watchdog thresholds must satisfy 0 < degrade_after < dead_after; "
                f"got degrade_after={degrade_after}, dead_after={dead_after}"
            )
        self._degrade_after = degrade_after
        self._dead_after = dead_after
        self._entries: dict[str, _Entry] = {}
        # The earliest time at which check() can change something; None = nothing pending.
        # Recomputed lazily so the broker's hot loop pays O(1) per turn.
        self._deadline: float | None = None
        self._deadline_valid = True

    @property
    def degrade_after(self) -> float:
        """Seconds of silence after which a component is DEGRADED."""
        return self._degrade_after

    @property
    def dead_after(self) -> float:
        """Seconds of silence after which a component is DEAD."""
        return self._dead_after

    def heard_from(self, name: str, now: float) -> Transition | None:
        """Record a report from `name` at `now`.

        Returns the DEGRADED/DEAD → ALIVE transition if the report revived it, None if it
        was already ALIVE or is reported for the first time (it starts ALIVE).
        A report dated before the last one does not move the last-seen time backwards.
        """
        entry = self._entries.get(name)
        if entry is None:
            self._entries[name] = _Entry(Liveness.ALIVE, now)
            self._invalidate_deadline()
            return None
        entry.last_seen = max(entry.last_seen, now)
        self._invalidate_deadline()
        if entry.state is Liveness.ALIVE:
            return None
        old, entry.state = entry.state, Liveness.ALIVE
        return Transition(name, old, Liveness.ALIVE, now, entry.last_seen)

    def reported_degraded(self, name: str, now: float) -> Transition | None:
        """`name` reports that its own loop is stuck (manual liveliness, spine.client.liveliness).

        An ALIVE component turns DEGRADED at once; its silence clock is *not* reset (the
        report proves the process, not the component), so it goes DEAD `dead_after` after
        its last healthy report. A name reported for the first time starts DEGRADED.
        Returns the ALIVE → DEGRADED transition, else None.
        """
        entry = self._entries.get(name)
        if entry is None:
            self._entries[name] = _Entry(Liveness.DEGRADED, now)
            self._invalidate_deadline()
            return None
        if entry.state is not Liveness.ALIVE:
            return None
        entry.state = Liveness.DEGRADED
        self._invalidate_deadline()
        return Transition(name, Liveness.ALIVE, Liveness.DEGRADED, now, entry.last_seen)

    def expect(self, name: str, now: float) -> Transition | None:
        """Start (or restart) the silence clock of `name` at `now` without a report.

        Use it when a component is (re)started by the supervisor: if the new process never
        reports, it still goes DEGRADED then DEAD. Returns the transition to ALIVE if
        `name` was DEGRADED or DEAD, else None.
        """
        entry = self._entries.get(name)
        if entry is None:
            self._entries[name] = _Entry(Liveness.ALIVE, now)
            self._invalidate_deadline()
            return None
        entry.last_seen = now
        self._invalidate_deadline()
        if entry.state is Liveness.ALIVE:
            return None
        old, entry.state = entry.state, Liveness.ALIVE
        return Transition(name, old, Liveness.ALIVE, now, now)

    def check(self, now: float) -> list[Transition]:
        """Apply the thresholds at `now`; return the transitions made, in order.

        A component found silent past `dead_after` while still ALIVE yields two
        transitions (ALIVE → DEGRADED, then DEGRADED → DEAD) so observers see every step.
        """
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return []
        changes: list[Transition] = []
        for name, entry in self._entries.items():
            silent = now - entry.last_seen
            if entry.state is Liveness.ALIVE and silent >= self._degrade_after:
                entry.state = Liveness.DEGRADED
                changes.append(
                    Transition(name, Liveness.ALIVE, Liveness.DEGRADED, now, entry.last_seen)
                )
            if entry.state is Liveness.DEGRADED and silent >= self._dead_after:
                entry.state = Liveness.DEAD
                changes.append(
                    Transition(name, Liveness.DEGRADED, Liveness.DEAD, now, entry.last_seen)
                )
        self._invalidate_deadline()
        return changes

    def next_deadline(self, now: float | None = None) -> float | None:
        """The earliest monotonic time at which `check` will change something.

        None when every tracked component is DEAD (or nothing is tracked): only a report
        can change things then. The broker uses `max(0, deadline - now)` as its poll
        timeout. `now` is accepted for symmetry with the other machines and not needed.
        """
        if not self._deadline_valid:
            best: float | None = None
            for entry in self._entries.values():
                if entry.state is Liveness.ALIVE:
                    due = entry.last_seen + self._degrade_after
                elif entry.state is Liveness.DEGRADED:
                    due = entry.last_seen + self._dead_after
                else:
                    continue
                if best is None or due < best:
                    best = due
            self._deadline = best
            self._deadline_valid = True
        return self._deadline

    def forget(self, name: str) -> None:
        """Stop tracking `name` (it left cleanly or was revoked). Unknown names are ignored."""
        if self._entries.pop(name, None) is not None:
            self._invalidate_deadline()

    def state(self, name: str) -> Liveness | None:
        """The current liveness of `name` as of the last `check`, or None if untracked."""
        entry = self._entries.get(name)
        return None if entry is None else entry.state

    def last_seen(self, name: str) -> float | None:
        """Monotonic time of the last report from `name`, or None if untracked."""
        entry = self._entries.get(name)
        return None if entry is None else entry.last_seen

    def routable(self, name: str) -> bool:
        """True only for an ALIVE component: DEGRADED ones get no round-robin work."""
        entry = self._entries.get(name)
        return entry is not None and entry.state is Liveness.ALIVE

    def snapshot(self, now: float) -> list[LivenessRecord]:
        """Every tracked component with its state and silence at `now`, sorted by name."""
        return [
            LivenessRecord(name, entry.state, entry.last_seen, max(0.0, now - entry.last_seen))
            for name, entry in sorted(self._entries.items())
        ]

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def _invalidate_deadline(self) -> None:
        self._deadline_valid = False
