"""Real processes sharing a breaker database: a SIGKILL mid-update, and a restart during the cool-down."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from spine.resilience.breaker import BreakerConfig, BreakerState
from spine.resilience.breaker_store import DB_FILENAME, BreakerStore
from spine.resilience.guard import CircuitBreaker

CHILD = Path(__file__).with_name("breaker_child.py")
Spawn = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start ``breaker_child.py`` processes; every one is killed and reaped at teardown."""
    children: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        child = subprocess.Popen([sys.executable, str(CHILD), *args], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        children.append(child)
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=10)


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.005)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def read_row(path: Path) -> tuple[object, ...] | None:
    conn = sqlite3.connect(path, timeout=5)
    try:
        return conn.execute("SELECT state, consecutive_failures, opened_at, last_failure, version "
                            "FROM breakers WHERE name = 'agent'").fetchone()
    finally:
        conn.close()


@pytest.mark.parametrize("round_", range(3))
def test_sigkill_during_updates_leaves_an_intact_database_in_one_legal_state(
        spawn: Spawn, state_dir: Path, round_: int) -> None:
    path = state_dir / DB_FILENAME
    BreakerStore(path).close()
    child = spawn("flip", str(path))
    wait_for(lambda: (r := read_row(path)) is not None and r[4] >= 20 + 10 * round_, 30, "the child to flip the row")
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)

    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
    state, failures, opened_at, last_failure, _ = read_row(path)
    legal_a = state == "open" and failures == 5 and opened_at is not None and last_failure == "A" * 2000
    legal_b = state == "closed" and failures == 0 and opened_at is None and last_failure == "B" * 2000
    assert legal_a or legal_b, (state, failures, opened_at, (last_failure or "")[:3])
    with BreakerStore(path) as store:
        assert store.load("agent", BreakerConfig()).state in (BreakerState.OPEN, BreakerState.CLOSED)


def test_a_process_restarted_during_the_cooldown_fails_fast_and_calls_only_after_it(
        spawn: Spawn, state_dir: Path) -> None:
    cooldown = 2.0
    path = state_dir / DB_FILENAME
    first = spawn("trip", str(path), str(cooldown))
    assert first.stdout is not None
    assert first.stdout.readline().strip() == "opened"
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    conn = sqlite3.connect(path)
    opened_mono = conn.execute("SELECT opened_at_monotonic FROM breakers WHERE name = 'agent'").fetchone()[0]
    conn.close()

    restarted = spawn("retry", str(path), str(cooldown), "30")
    out, err = restarted.communicate(timeout=60)
    assert restarted.returncode == 0, err
    report = json.loads(out)
    assert report["refusals"], "the restarted process was never refused: it started after the cool-down"
    assert report["refusals"][0] < opened_mono + cooldown
    assert all(t < opened_mono + cooldown for t in report["refusals"])
    assert len(report["calls"]) == 1
    assert report["calls"][0] >= opened_mono + cooldown
    assert report["state"] == "closed"


def test_processes_racing_for_a_half_open_breaker_make_exactly_one_trial_call(
        spawn: Spawn, state_dir: Path, tmp_path: Path) -> None:
    path = state_dir / DB_FILENAME
    with BreakerStore(path) as store:
        breaker = CircuitBreaker("agent", failure_threshold=1, cooldown=0.0, store=store)
        with pytest.raises(ConnectionError):
            with breaker:
                raise ConnectionError("down")
        assert store.load("agent", breaker.config).state is BreakerState.OPEN
    go, release = tmp_path / "go", tmp_path / "release"
    racers = [spawn("race", str(path), str(go), str(release)) for _ in range(6)]
    for racer in racers:
        assert racer.stdout is not None and racer.stdout.readline().strip() == "ready"
    go.touch()
    outcomes = [racer.stdout.readline().strip() for racer in racers]  # type: ignore[union-attr]
    release.touch()
    for racer in racers:
        _, err = racer.communicate(timeout=30)
        assert racer.returncode == 0, err
    assert sorted(outcomes) == ["called"] + ["refused"] * 5
    with BreakerStore(path) as store:
        assert store.load("agent", BreakerConfig()).state is BreakerState.CLOSED
