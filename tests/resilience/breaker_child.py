"""A separate process that uses a persisted breaker, for the crash and restart tests.

    python breaker_child.py flip  DB            alternate one row between two states forever
    python breaker_child.py trip  DB COOLDOWN   open breaker 'agent', print "opened", wait to be killed
    python breaker_child.py retry DB COOLDOWN DEADLINE
        call the dependency through breaker 'agent' until one call gets through; print JSON with
        the monotonic start times of the refused attempts and the time the dependency ran
    python breaker_child.py race  DB GO RELEASE
        print "ready", wait for file GO, call once through breaker 'agent' (cool-down 0) and print
        "called" (then hold the call until file RELEASE exists) or "refused"
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from spine.errors import CircuitOpenError
from spine.resilience.breaker import Breaker, BreakerSnapshot, BreakerState
from spine.resilience.breaker_store import BreakerStore
from spine.resilience.guard import CircuitBreaker

STATE_A = BreakerSnapshot(BreakerState.OPEN, 5, 0.0, None, "A" * 2000, None)
STATE_B = BreakerSnapshot(BreakerState.CLOSED, 0, None, None, "B" * 2000, None)


def flip(store: BreakerStore) -> None:
    def step(machine: Breaker) -> None:
        now = time.monotonic()
        if machine.snapshot.state is BreakerState.OPEN:
            machine.snapshot = STATE_B
        else:
            machine.snapshot = replace(STATE_A, opened_at=now)
    while True:
        store.transact("agent", Breaker().config, step)


def trip(store: BreakerStore, cooldown: float) -> None:
    breaker = CircuitBreaker("agent", cooldown=cooldown, store=store)
    for _ in range(breaker.config.failure_threshold):
        try:
            with breaker:
                raise ConnectionError("agent down")
        except ConnectionError:
            pass
    print("opened", flush=True)
    sys.stdin.read()


def retry(store: BreakerStore, cooldown: float, deadline_s: float) -> None:
    breaker = CircuitBreaker("agent", cooldown=cooldown, store=store)
    calls: list[float] = []
    refusals: list[float] = []
    deadline = time.monotonic() + deadline_s
    while not calls and time.monotonic() < deadline:
        attempt_started = time.monotonic()
        try:
            breaker.call(lambda: calls.append(time.monotonic()))
        except CircuitOpenError as refused:
            refusals.append(attempt_started)
            time.sleep(min(max(refused.retry_after, 0.0), 0.05))
    print(json.dumps({"calls": calls, "refusals": refusals, "state": breaker.state.value}), flush=True)


def wait_for_file(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {path}")
        time.sleep(0.002)


def race(store: BreakerStore, go: Path, release: Path) -> None:
    breaker = CircuitBreaker("agent", cooldown=0.0, trial_timeout=60.0, store=store)

    def dependency() -> None:
        print("called", flush=True)
        wait_for_file(release)

    print("ready", flush=True)
    wait_for_file(go)
    try:
        breaker.call(dependency)
    except CircuitOpenError:
        print("refused", flush=True)


def main() -> None:
    mode, db = sys.argv[1], sys.argv[2]
    store = BreakerStore(db)
    if mode == "flip":
        flip(store)
    elif mode == "trip":
        trip(store, float(sys.argv[3]))
    elif mode == "retry":
        retry(store, float(sys.argv[3]), float(sys.argv[4]))
    elif mode == "race":
        race(store, Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
