"""The circuit-breaker state machine (RES-02) as a pure class: events and the time in, decisions out.

CLOSED counts consecutive failures; at ``failure_threshold`` it goes OPEN. OPEN refuses
every call until ``cooldown`` seconds have passed, then the next caller is admitted as the
single trial call and the breaker is HALF_OPEN. The trial's success closes it; its failure
reopens it for another cool-down. Nothing here reads a clock, takes a lock or does I/O:
:mod:`spine.resilience.guard` feeds it and :mod:`spine.resilience.breaker_store` persists it.

Times are monotonic seconds (``now`` arguments). A HALF_OPEN trial that never reports back
(its process died) stops blocking other callers after ``trial_timeout`` seconds.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace

from spine.errors import ConfigError


class BreakerState(str, enum.Enum):
    """The three states of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerConfig:
    """Thresholds of one breaker.

    ``failure_threshold`` consecutive failures open it; it stays open ``cooldown`` seconds;
    a trial in flight longer than ``trial_timeout`` seconds (default: ``cooldown``, at
    least 1 s) is presumed lost and another trial is admitted.
    """

    failure_threshold: int = 5
    cooldown: float = 30.0
    trial_timeout: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.failure_threshold, bool) or not isinstance(self.failure_threshold, int) \
                or self.failure_threshold < 1:
            raise ConfigError(
                f"circuit breaker failure_threshold must be an integer >= 1, got {self.failure_threshold!r}")
        if not (isinstance(self.cooldown, (int, float)) and math.isfinite(self.cooldown) and self.cooldown >= 0):
            raise ConfigError(f"circuit breaker cooldown must be a finite number of seconds >= 0, got {self.cooldown!r}")
        if self.trial_timeout is not None and not (
                isinstance(self.trial_timeout, (int, float)) and math.isfinite(self.trial_timeout)
                and self.trial_timeout > 0):
            raise ConfigError(
                f"circuit breaker trial_timeout must be a finite number of seconds > 0, got {self.trial_timeout!r}")

    @property
    def effective_trial_timeout(self) -> float:
        """Seconds after which an unanswered trial no longer blocks a new one."""
        if self.trial_timeout is not None:
            return float(self.trial_timeout)
        return max(float(self.cooldown), 1.0)


@dataclass(frozen=True)
class BreakerSnapshot:
    """Everything a breaker remembers; what the store persists.

    ``opened_at`` is when it last went OPEN and ``trial_started_at`` when the HALF_OPEN
    trial in flight was admitted (``None``: no trial in flight), both in monotonic seconds.
    """

    state: BreakerState = BreakerState.CLOSED
    consecutive_failures: int = 0
    opened_at: float | None = None
    trial_started_at: float | None = None
    last_failure: str | None = None
    last_failure_at: float | None = None


@dataclass(frozen=True)
class Admission:
    """The answer to "may I call the dependency now?".

    ``allowed`` false means fail fast; ``retry_at`` (monotonic seconds) is then the earliest
    time a trial may be admitted. ``trial`` true means this call is the HALF_OPEN trial and
    its outcome must be reported with ``trial=True``.
    """

    allowed: bool
    trial: bool = False
    retry_at: float | None = None


@dataclass(frozen=True)
class BreakerTransition:
    """A change of state, returned so the caller can log or count it."""

    old: BreakerState
    new: BreakerState


class Breaker:
    """One circuit breaker's state machine. Not thread-safe: the caller serialises access."""

    def __init__(self, config: BreakerConfig | None = None, snapshot: BreakerSnapshot | None = None) -> None:
        self.config = config or BreakerConfig()
        self.snapshot = snapshot or BreakerSnapshot()

    @property
    def state(self) -> BreakerState:
        """The current state (OPEN stays OPEN until a caller is admitted after the cool-down)."""
        return self.snapshot.state

    def admit(self, now: float) -> Admission:
        """Decide whether a call may go to the dependency at ``now``; may move OPEN → HALF_OPEN."""
        snap = self.snapshot
        if snap.state is BreakerState.CLOSED:
            return Admission(allowed=True)
        if snap.state is BreakerState.OPEN:
            ready_at = (snap.opened_at if snap.opened_at is not None else now) + self.config.cooldown
            if now < ready_at:
                return Admission(allowed=False, retry_at=ready_at)
            self.snapshot = replace(snap, state=BreakerState.HALF_OPEN, trial_started_at=now)
            return Admission(allowed=True, trial=True)
        # HALF_OPEN: one trial at a time; a lost trial frees the slot after trial_timeout.
        if snap.trial_started_at is not None:
            trial_deadline = snap.trial_started_at + self.config.effective_trial_timeout
            if now < trial_deadline:
                return Admission(allowed=False, retry_at=trial_deadline)
        self.snapshot = replace(snap, trial_started_at=now)
        return Admission(allowed=True, trial=True)

    def record_success(self, now: float, trial: bool = False) -> BreakerTransition | None:
        """Report that an admitted call succeeded; a successful trial closes the breaker."""
        snap = self.snapshot
        if snap.state is BreakerState.CLOSED:
            if snap.consecutive_failures:
                self.snapshot = replace(snap, consecutive_failures=0)
            return None
        if snap.state is BreakerState.HALF_OPEN and trial:
            self.snapshot = replace(snap, state=BreakerState.CLOSED, consecutive_failures=0,
                                    opened_at=None, trial_started_at=None)
            return BreakerTransition(BreakerState.HALF_OPEN, BreakerState.CLOSED)
        # A call admitted before the breaker opened, finishing late: it says nothing about now.
        return None

    def record_failure(self, now: float, reason: str, trial: bool = False) -> BreakerTransition | None:
        """Report that an admitted call failed; may open (or reopen) the breaker."""
        snap = self.snapshot
        if snap.state is BreakerState.CLOSED:
            failures = snap.consecutive_failures + 1
            if failures >= self.config.failure_threshold:
                self.snapshot = replace(snap, state=BreakerState.OPEN, consecutive_failures=failures,
                                        opened_at=now, trial_started_at=None,
                                        last_failure=reason, last_failure_at=now)
                return BreakerTransition(BreakerState.CLOSED, BreakerState.OPEN)
            self.snapshot = replace(snap, consecutive_failures=failures, last_failure=reason, last_failure_at=now)
            return None
        if snap.state is BreakerState.HALF_OPEN and trial:
            self.snapshot = replace(snap, state=BreakerState.OPEN, consecutive_failures=snap.consecutive_failures + 1,
                                    opened_at=now, trial_started_at=None,
                                    last_failure=reason, last_failure_at=now)
            return BreakerTransition(BreakerState.HALF_OPEN, BreakerState.OPEN)
        return None

    def record_abandoned(self, now: float, trial: bool = False) -> None:
        """Report that an admitted call ended without a verdict (cancelled, interrupted).

        An abandoned trial frees the HALF_OPEN slot at once so the next caller becomes the trial.
        """
        snap = self.snapshot
        if snap.state is BreakerState.HALF_OPEN and trial:
            self.snapshot = replace(snap, trial_started_at=None)

    def reset(self) -> BreakerTransition | None:
        """Close the breaker and forget its failures (an operator's "the dependency is fixed")."""
        old = self.snapshot.state
        self.snapshot = BreakerSnapshot()
        return BreakerTransition(old, BreakerState.CLOSED) if old is not BreakerState.CLOSED else None
