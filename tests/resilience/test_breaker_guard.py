"""CircuitBreaker as decorator and context manager, sync and async, with an injected clock."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from spine.errors import CircuitOpenError
from spine.resilience.breaker import BreakerState
from spine.resilience.breaker_store import BreakerStore
from spine.resilience.guard import CircuitBreaker

from conftest import FakeClock


class Dependency:
    """A fake external agent that counts calls and fails while ``broken``."""

    def __init__(self) -> None:
        self.calls = 0
        self.broken = True

    def __call__(self) -> str:
        self.calls += 1
        if self.broken:
            raise ConnectionError("agent unreachable")
        return "ok"


def trip(breaker: CircuitBreaker, dependency: Dependency) -> None:
    for _ in range(breaker.config.failure_threshold):
        with pytest.raises(ConnectionError):
            breaker.call(dependency)


def test_open_breaker_fails_fast_without_calling_and_says_when_to_retry(clock: FakeClock) -> None:
    breaker = CircuitBreaker("tavily", clock=clock)
    dependency = Dependency()
    trip(breaker, dependency)
    clock.advance(10)
    with pytest.raises(CircuitOpenError) as refused:
        breaker.call(dependency)
    assert dependency.calls == 5
    error = refused.value
    assert error.breaker == "tavily"
    assert error.retry_after == pytest.approx(20.0)
    assert error.retry_at == clock.utc_now() + timedelta(seconds=20)
    assert "tavily" in str(error) and "next trial allowed at" in str(error)
    assert "ConnectionError: agent unreachable" in str(error)


def test_after_the_cooldown_one_trial_success_closes_the_breaker(clock: FakeClock) -> None:
    breaker = CircuitBreaker("agent", clock=clock)
    dependency = Dependency()
    trip(breaker, dependency)
    clock.advance(30)
    dependency.broken = False
    assert breaker.call(dependency) == "ok"
    assert breaker.state is BreakerState.CLOSED
    assert dependency.calls == 6


def test_a_failed_trial_reopens_and_restarts_the_cooldown(clock: FakeClock) -> None:
    breaker = CircuitBreaker("agent", clock=clock)
    dependency = Dependency()
    trip(breaker, dependency)
    clock.advance(30)
    with pytest.raises(ConnectionError):
        breaker.call(dependency)
    assert breaker.state is BreakerState.OPEN
    clock.advance(29)
    with pytest.raises(CircuitOpenError):
        breaker.call(dependency)
    assert dependency.calls == 6


def test_decorator_guards_a_plain_function(clock: FakeClock) -> None:
    dependency = Dependency()
    breaker = CircuitBreaker("agent", failure_threshold=2, clock=clock)

    @breaker
    def fetch(x: int) -> tuple[int, str]:
        return x, dependency()

    for _ in range(2):
        with pytest.raises(ConnectionError):
            fetch(1)
    with pytest.raises(CircuitOpenError):
        fetch(1)
    assert fetch.__name__ == "fetch"
    assert dependency.calls == 2


def test_context_manager_guards_a_block(clock: FakeClock) -> None:
    breaker = CircuitBreaker("agent", failure_threshold=1, clock=clock)
    ran = []
    with pytest.raises(ConnectionError):
        with breaker:
            raise ConnectionError("down")
    with pytest.raises(CircuitOpenError):
        with breaker:
            ran.append(1)
    assert ran == []


def test_decorator_and_context_manager_work_for_async_code(clock: FakeClock) -> None:
    breaker = CircuitBreaker("agent", failure_threshold=2, cooldown=5, clock=clock)
    calls = []

    @breaker
    async def ask(fail: bool) -> str:
        calls.append(fail)
        await asyncio.sleep(0)
        if fail:
            raise TimeoutError("no answer")
        return "answer"

    async def scenario() -> None:
        for _ in range(2):
            with pytest.raises(TimeoutError):
                await ask(True)
        with pytest.raises(CircuitOpenError):
            await ask(False)
        with pytest.raises(CircuitOpenError):
            async with breaker:
                calls.append("block")
        clock.advance(5)
        async with breaker:
            calls.append("trial")
        assert await breaker.acall(ask, False) == "answer"

    asyncio.run(scenario())
    assert calls == [True, True, "trial", False]
    assert breaker.state is BreakerState.CLOSED


def test_only_configured_exceptions_count_as_failures(clock: FakeClock) -> None:
    breaker = CircuitBreaker("agent", failure_threshold=2, failure_types=(ConnectionError,),
                             ignored_types=(ConnectionRefusedError,), clock=clock)
    for error in (ValueError("bad input"), ConnectionRefusedError("refused"), KeyError("k")):
        for _ in range(3):
            with pytest.raises(type(error)):
                with breaker:
                    raise error
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot().consecutive_failures == 0
    for _ in range(2):
        with pytest.raises(ConnectionResetError):
            with breaker:
                raise ConnectionResetError("reset")
    assert breaker.state is BreakerState.OPEN


def test_an_uncounted_exception_in_the_trial_means_the_dependency_answered(clock: FakeClock) -> None:
    breaker = CircuitBreaker("agent", failure_threshold=1, failure_types=(ConnectionError,), clock=clock)
    with pytest.raises(ConnectionError):
        with breaker:
            raise ConnectionError()
    clock.advance(30)
    with pytest.raises(ValueError):
        with breaker:
            raise ValueError("the agent said: bad query")
    assert breaker.state is BreakerState.CLOSED


def test_a_cancelled_trial_lets_the_next_caller_try(clock: FakeClock) -> None:
    breaker = CircuitBreaker("agent", failure_threshold=1, clock=clock)
    with pytest.raises(ConnectionError):
        with breaker:
            raise ConnectionError()
    clock.advance(30)

    async def scenario() -> None:
        started = asyncio.Event()

        async def hang() -> None:
            async with breaker:
                started.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(hang())
        await started.wait()
        with pytest.raises(CircuitOpenError):
            async with breaker:
                pass
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with breaker:
            pass

    asyncio.run(scenario())
    assert breaker.state is BreakerState.CLOSED


def test_reset_closes_an_open_breaker(clock: FakeClock) -> None:
    breaker = CircuitBreaker("agent", failure_threshold=1, clock=clock)
    with pytest.raises(ConnectionError):
        breaker.call(Dependency())
    breaker.reset()
    assert breaker.state is BreakerState.CLOSED


def hammer_half_open(breaker: CircuitBreaker, threads: int = 100) -> tuple[int, int]:
    """Start ``threads`` callers at once against a breaker due for its trial.

    The dependency holds the trial open until every other caller has been answered, so
    a second admission could not hide behind a quick trial. Returns (calls, refusals).
    """
    calls = 0
    refusals = 0
    lock = threading.Lock()
    everyone_else_answered = threading.Event()
    barrier = threading.Barrier(threads)

    def dependency() -> None:
        nonlocal calls
        with lock:
            calls += 1
        assert everyone_else_answered.wait(timeout=30), "the other callers were never answered"

    def caller() -> None:
        nonlocal refusals
        barrier.wait(timeout=30)
        try:
            breaker.call(dependency)
        except CircuitOpenError:
            with lock:
                refusals += 1
                if refusals == threads - 1:
                    everyone_else_answered.set()

    workers = [threading.Thread(target=caller) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    everyone_else_answered.set()
    assert not any(w.is_alive() for w in workers)
    return calls, refusals


def test_hundred_threads_against_half_open_make_exactly_one_trial_call(clock: FakeClock) -> None:
    breaker = CircuitBreaker("agent", clock=clock)
    trip(breaker, Dependency())
    clock.advance(30)
    assert hammer_half_open(breaker) == (1, 99)
    assert breaker.state is BreakerState.CLOSED


def test_hundred_threads_against_a_persisted_half_open_breaker_make_one_trial_call(
        clock: FakeClock, state_dir: Path) -> None:
    with BreakerStore.in_state_dir(state_dir, clock=clock) as store:
        breaker = CircuitBreaker("agent", store=store)
        trip(breaker, Dependency())
        clock.advance(30)
        assert hammer_half_open(breaker) == (1, 99)
        assert breaker.state is BreakerState.CLOSED
