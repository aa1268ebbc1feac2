"""The SQLite breaker store: WAL, rehydration, clock jumps, sharing, and refusing bad files."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from spine.errors import CircuitOpenError, StateStoreError
from spine.resilience.breaker import BreakerState
from spine.resilience.breaker_store import DB_FILENAME, BreakerStore
from spine.resilience.guard import CircuitBreaker

from conftest import FakeClock

BOOT = "boot-a"


def open_breaker(store: BreakerStore, name: str = "agent", **kwargs: object) -> CircuitBreaker:
    breaker = CircuitBreaker(name, store=store, **kwargs)  # type: ignore[arg-type]
    for _ in range(breaker.config.failure_threshold):
        with pytest.raises(ConnectionError):
            with breaker:
                raise ConnectionError("down")
    return breaker


def row(path: Path, name: str = "agent") -> sqlite3.Row:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM breakers WHERE name = ?", (name,)).fetchone()
    finally:
        conn.close()


def test_database_is_in_wal_mode_with_one_row_per_breaker(clock: FakeClock, state_dir: Path) -> None:
    with BreakerStore.in_state_dir(state_dir, clock=clock, boot_id=BOOT) as store:
        open_breaker(store, "a")
        open_breaker(store, "b")
    conn = sqlite3.connect(state_dir / DB_FILENAME)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT name, state FROM breakers ORDER BY name").fetchall() == \
            [("a", "open"), ("b", "open")]
    finally:
        conn.close()


def test_opened_at_is_stored_as_utc_wall_time(clock: FakeClock, state_dir: Path) -> None:
    with BreakerStore.in_state_dir(state_dir, clock=clock, boot_id=BOOT) as store:
        open_breaker(store)
    stored = row(state_dir / DB_FILENAME)
    opened_at = datetime.fromisoformat(stored["opened_at"])
    assert opened_at == clock.utc_now() and opened_at.utcoffset().total_seconds() == 0
    assert stored["consecutive_failures"] == 5
    assert stored["last_failure"] == "ConnectionError: down"


def test_a_healthy_breaker_writes_nothing(clock: FakeClock, state_dir: Path) -> None:
    with BreakerStore.in_state_dir(state_dir, clock=clock, boot_id=BOOT) as store:
        breaker = CircuitBreaker("agent", store=store)
        for _ in range(10):
            breaker.call(lambda: None)
    assert row(state_dir / DB_FILENAME) is None


def test_open_breaker_is_open_after_restart_with_the_remaining_cooldown(clock: FakeClock, state_dir: Path) -> None:
    with BreakerStore.in_state_dir(state_dir, clock=clock, boot_id=BOOT) as store:
        open_breaker(store)
    clock.advance(12)
    with BreakerStore.in_state_dir(state_dir, clock=clock, boot_id=BOOT) as store:
        breaker = CircuitBreaker("agent", store=store)
        assert breaker.state is BreakerState.OPEN
        with pytest.raises(CircuitOpenError) as refused:
            breaker.call(lambda: None)
        assert refused.value.retry_after == pytest.approx(18)
        clock.advance(18)
        breaker.call(lambda: None)
        assert breaker.state is BreakerState.CLOSED


def test_after_a_reboot_the_remaining_cooldown_comes_from_wall_time(clock: FakeClock, state_dir: Path) -> None:
    with BreakerStore.in_state_dir(state_dir, clock=clock, boot_id=BOOT) as store:
        open_breaker(store)
    rebooted = FakeClock(mono=5.0, wall=clock.utc_now())
    rebooted.set_wall(20)
    with BreakerStore.in_state_dir(state_dir, clock=rebooted, boot_id="boot-b") as store:
        with pytest.raises(CircuitOpenError) as refused:
            CircuitBreaker("agent", store=store).call(lambda: None)
    assert refused.value.retry_after == pytest.approx(10)


def test_wall_clock_jumping_back_across_a_reboot_delays_at_most_one_cooldown(
        clock: FakeClock, state_dir: Path) -> None:
    with BreakerStore.in_state_dir(state_dir, clock=clock, boot_id=BOOT) as store:
        open_breaker(store)
    rebooted = FakeClock(mono=5.0, wall=clock.utc_now())
    rebooted.set_wall(-86_400 * 365)
    with BreakerStore.in_state_dir(state_dir, clock=rebooted, boot_id="boot-b") as store:
        breaker = CircuitBreaker("agent", store=store)
        with pytest.raises(CircuitOpenError) as refused:
            breaker.call(lambda: None)
        assert refused.value.retry_after == pytest.approx(30)
        rebooted.advance(30)
        assert breaker.call(lambda: "trial") == "trial"
    assert row(state_dir / DB_FILENAME)["state"] == "closed"


def test_wall_clock_jumps_within_a_boot_change_nothing(clock: FakeClock, state_dir: Path) -> None:
    with BreakerStore.in_state_dir(state_dir, clock=clock, boot_id=BOOT) as store:
        breaker = open_breaker(store)
        clock.set_wall(-3600)
        clock.advance(30)
        assert breaker.call(lambda: "trial") == "trial"
        open_breaker(store)
        clock.set_wall(+3600)
        with pytest.raises(CircuitOpenError):
            breaker.call(lambda: None)


def test_two_stores_on_one_file_share_state_and_the_trial(clock: FakeClock, state_dir: Path) -> None:
    with BreakerStore.in_state_dir(state_dir, clock=clock, boot_id=BOOT) as first, \
            BreakerStore.in_state_dir(state_dir, clock=clock, boot_id=BOOT) as second:
        a = CircuitBreaker("agent", store=first)
        b = CircuitBreaker("agent", store=second)
        for guard in (a, b, a, b):
            with pytest.raises(ConnectionError):
                with guard:
                    raise ConnectionError()
        assert b.snapshot().consecutive_failures == 4
        with pytest.raises(ConnectionError):
            with a:
                raise ConnectionError()
        with pytest.raises(CircuitOpenError):
            b.call(lambda: None)
        clock.advance(30)
        with a:
            with pytest.raises(CircuitOpenError):
                b.call(lambda: None)
        assert b.state is BreakerState.CLOSED


def test_corrupt_database_is_an_error_naming_the_file_and_the_reset(state_dir: Path) -> None:
    state_dir.mkdir()
    path = state_dir / DB_FILENAME
    path.write_bytes(b"this is not sqlite, it is garbage " * 200)
    with pytest.raises(StateStoreError) as refused:
        BreakerStore(path)
    message = str(refused.value)
    assert str(path) in message and "mv " in message and "CLOSED" in message


def test_damaged_pages_are_detected_on_open(clock: FakeClock, state_dir: Path) -> None:
    with BreakerStore.in_state_dir(state_dir, clock=clock, boot_id=BOOT) as store:
        for i in range(200):
            open_breaker(store, f"agent-{i}", failure_threshold=1)
    path = state_dir / DB_FILENAME
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 3 * page
    data[2 * page:3 * page] = b"\xff" * page
    path.write_bytes(bytes(data))
    with pytest.raises(StateStoreError) as refused:
        BreakerStore(path)
    assert str(path) in str(refused.value)


def test_unopenable_database_path_is_an_error_not_a_fresh_state(state_dir: Path) -> None:
    path = state_dir / DB_FILENAME
    path.mkdir(parents=True)
    with pytest.raises(StateStoreError, match=str(path)):
        BreakerStore(path)


def test_an_invalid_row_is_an_error_not_a_closed_breaker(clock: FakeClock, state_dir: Path) -> None:
    with BreakerStore.in_state_dir(state_dir, clock=clock, boot_id=BOOT) as store:
        open_breaker(store)
    conn = sqlite3.connect(state_dir / DB_FILENAME)
    conn.execute("UPDATE breakers SET opened_at = 'yesterday'")
    conn.commit()
    conn.close()
    with BreakerStore.in_state_dir(state_dir, clock=clock, boot_id=BOOT) as store:
        with pytest.raises(StateStoreError, match="row 'agent' is invalid"):
            CircuitBreaker("agent", store=store).call(lambda: None)


def test_a_database_from_a_newer_schema_is_refused(state_dir: Path) -> None:
    state_dir.mkdir()
    path = state_dir / DB_FILENAME
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StateStoreError, match="schema version 99"):
        BreakerStore(path)
