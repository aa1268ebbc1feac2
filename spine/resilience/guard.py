"""``CircuitBreaker``: the RES-02 breaker as a decorator, a context manager and a call wrapper.

Works for plain and ``async`` functions::

    agent = CircuitBreaker("tavily", store=BreakerStore.in_state_dir())

    @agent
    async def search(q): ...

    with agent:
        requests.get(...)

A refused call raises :class:`~spine.errors.CircuitOpenError` without running the body;
the error carries ``breaker`` (the name), ``retry_at`` (UTC datetime of the next trial)
and ``retry_after`` (seconds from now). Which exceptions count as failures is
configurable: an exception that does not count means the dependency answered (a success);
a ``BaseException`` that is not an ``Exception`` (cancellation, KeyboardInterrupt) gives
no verdict and frees the trial slot for the next caller.

With a :class:`~spine.resilience.breaker_store.BreakerStore` the state is shared with
every process using the same database and survives restarts; without one it lives in
this process only. Store operations are short synchronous SQLite calls, also from
``async`` code.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar

from spine.errors import CircuitOpenError
from spine.resilience.breaker import Admission, Breaker, BreakerConfig, BreakerSnapshot, BreakerState, BreakerTransition
from spine.resilience.breaker_store import BreakerStore
from spine.resilience.clock import Clock, SystemClock

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

log = logging.getLogger("spine.resilience.breaker")

MAX_REASON_LENGTH = 500


class CircuitBreaker:
    """A named breaker around calls to one unreliable dependency; thread- and task-safe."""

    def __init__(self, name: str, *, failure_threshold: int = 5, cooldown: float = 30.0,
                 trial_timeout: float | None = None,
                 failure_types: tuple[type[BaseException], ...] = (Exception,),
                 ignored_types: tuple[type[BaseException], ...] = (),
                 store: BreakerStore | None = None, clock: Clock | None = None) -> None:
        self.name = name
        self.config = BreakerConfig(failure_threshold, cooldown, trial_timeout)
        self.failure_types = failure_types
        self.ignored_types = ignored_types
        self._store = store
        self._clock: Clock = clock or (store.clock if store is not None else SystemClock())
        self._machine = Breaker(self.config)
        self._lock = threading.Lock()
        self._active: ContextVar[tuple[Admission, ...]] = ContextVar(f"spine-breaker-{name}", default=())

    # -- inspection -------------------------------------------------------------------------

    def snapshot(self) -> BreakerSnapshot:
        """The current state, failure count and times (monotonic seconds)."""
        return self._step(lambda machine: machine.snapshot)

    @property
    def state(self) -> BreakerState:
        """CLOSED, OPEN or HALF_OPEN as last recorded (OPEN until a caller is admitted as trial)."""
        return self.snapshot().state

    def reset(self) -> None:
        """Close the breaker and forget its failures, for every process sharing the store."""
        transition = self._step(lambda machine: machine.reset())
        if transition is not None:
            log.warning("circuit breaker %r reset by request: %s -> closed", self.name, transition.old.value)

    # -- the three ways to guard a call ----------------------------------------------------

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate ``fn`` (plain or ``async def``) so every call goes through the breaker."""
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                async with self:
                    return await fn(*args, **kwargs)
            return guarded_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            with self:
                return fn(*args, **kwargs)
        return guarded

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` through the breaker and return its result."""
        with self:
            return fn(*args, **kwargs)

    async def acall(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Await ``fn(*args, **kwargs)`` through the breaker and return its result."""
        async with self:
            return await fn(*args, **kwargs)

    def __enter__(self) -> CircuitBreaker:
        admission = self._admit()
        self._active.set(self._active.get() + (admission,))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        stack = self._active.get()
        self._active.set(stack[:-1])
        self._settle(stack[-1], exc)

    async def __aenter__(self) -> CircuitBreaker:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: object) -> None:
        self.__exit__(exc_type, exc, tb)

    # -- driving the machine ---------------------------------------------------------------

    def _step(self, step: Callable[[Breaker], T]) -> T:
        if self._store is not None:
            return self._store.transact(self.name, self.config, step)
        with self._lock:
            return step(self._machine)

    def _admit(self) -> Admission:
        now = self._clock.monotonic()
        admission, snap = self._step(lambda machine: (machine.admit(now), machine.snapshot))
        if not admission.allowed:
            raise self._open_error(admission, snap, now)
        if admission.trial:
            log.info("circuit breaker %r half-open: admitting one trial call", self.name)
        return admission

    def _settle(self, admission: Admission, exc: BaseException | None) -> None:
        now = self._clock.monotonic()
        trial = admission.trial
        transition: BreakerTransition | None
        if exc is None:
            transition = self._step(lambda machine: machine.record_success(now, trial))
        elif isinstance(exc, self.failure_types) and not isinstance(exc, self.ignored_types):
            reason = f"{type(exc).__name__}: {exc}"[:MAX_REASON_LENGTH]
            transition = self._step(lambda machine: machine.record_failure(now, reason, trial))
        elif isinstance(exc, Exception):
            transition = self._step(lambda machine: machine.record_success(now, trial))
        else:
            self._step(lambda machine: machine.record_abandoned(now, trial))
            transition = None
        if transition is not None:
            if transition.new is BreakerState.OPEN:
                log.warning("circuit breaker %r opened (%s); calls fail fast for %.1f s",
                            self.name, exc, self.config.cooldown)
            else:
                log.info("circuit breaker %r closed: the trial call succeeded", self.name)

    def _open_error(self, admission: Admission, snap: BreakerSnapshot, now: float) -> CircuitOpenError:
        retry_after = max((admission.retry_at or now) - now, 0.0)
        retry_at = self._clock.utc_now() + timedelta(seconds=retry_after)
        when = f"{retry_at.isoformat(timespec='milliseconds')} (in {retry_after:.1f} s)"
        if snap.state is BreakerState.HALF_OPEN:
            detail = (f"a trial call is in progress: its success closes the breaker, its failure reopens it; "
                      f"if it never reports, the next trial is allowed at {when}")
        else:
            detail = (f"after {snap.consecutive_failures} consecutive failures"
                      f" (last: {snap.last_failure}); next trial allowed at {when}")
        return CircuitOpenError(f"circuit breaker {self.name!r} is {snap.state.value}, call refused "
                                f"without contacting the dependency: {detail}",
                                breaker=self.name, retry_at=retry_at, retry_after=retry_after)
