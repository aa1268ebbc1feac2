"""Circuit-breaker state persisted in SQLite, shared by every process using one state directory.

One row per breaker name in ``<state dir>/breakers.sqlite3`` (WAL mode, ``synchronous=FULL``);
every change is one ``BEGIN IMMEDIATE`` transaction that re-reads the row, applies the
state machine and writes the result, so several processes see one consistent state and
only one of them can claim a HALF_OPEN trial.

Times: ``opened_at`` is stored as UTC wall time (ISO 8601), together with the
``time.monotonic()`` reading of the same instant and the kernel boot id. Within one boot
the monotonic reading is used, so wall-clock jumps change nothing. After a reboot only
the wall time is meaningful: the elapsed time is clamped to ``[0, cooldown]``, so a
breaker that was OPEN stays OPEN for at most one more cool-down even if the wall clock
jumped backwards, and the row is rebased onto the new boot at once.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

from spine.errors import ConfigError, StateStoreError
from spine.resilience.breaker import Breaker, BreakerConfig, BreakerSnapshot, BreakerState
from spine.resilience.clock import Clock, SystemClock
from spine.resilience.paths import default_state_dir, ensure_state_dir

T = TypeVar("T")

DB_FILENAME = "breakers.sqlite3"
SCHEMA_VERSION = 1
MAX_NAME_LENGTH = 200
MAX_FAILURE_TEXT = 2000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS breakers (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('closed', 'open', 'half_open')),
    consecutive_failures INTEGER NOT NULL CHECK (consecutive_failures >= 0),
    opened_at TEXT,
    opened_at_monotonic REAL,
    trial_started_monotonic REAL,
    boot_id TEXT NOT NULL,
    last_failure TEXT,
    last_failure_at TEXT,
    version INTEGER NOT NULL,
    updated_at TEXT NOT NULL
)
"""

_COLUMNS = ("state, consecutive_failures, opened_at, opened_at_monotonic, trial_started_monotonic, "
            "boot_id, last_failure, last_failure_at, version")


def current_boot_id() -> str:
    """The kernel's boot id (changes at every boot); a per-process random id where unavailable."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or _PROCESS_BOOT_ID
    except OSError:
        return _PROCESS_BOOT_ID


_PROCESS_BOOT_ID = f"unknown-{uuid.uuid4()}"


@dataclass(frozen=True)
class _Row:
    state: BreakerState
    consecutive_failures: int
    opened_at: datetime | None
    opened_at_monotonic: float | None
    trial_started_monotonic: float | None
    boot_id: str
    last_failure: str | None
    last_failure_at: datetime | None
    version: int


class BreakerStore:
    """The SQLite file holding every breaker's state; thread-safe, one connection per instance.

    Raises :class:`~spine.errors.StateStoreError` naming the file (and how to reset it)
    when the database is corrupt, unreadable, from a newer schema, or holds an invalid row.
    """

    def __init__(self, path: Path | str, *, clock: Clock | None = None, boot_id: str | None = None,
                 busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.clock: Clock = clock or SystemClock()
        self._boot_id = boot_id or current_boot_id()
        self._lock = threading.Lock()
        ensure_state_dir(self.path.parent)
        try:
            self._conn = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None,
                                         check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            self._prepare()
        except StateStoreError:
            self._conn.close()
            raise
        except sqlite3.Error as exc:
            self._conn.close()
            raise self._error(exc) from exc

    @classmethod
    def in_state_dir(cls, state_dir: Path | str | None = None, **kwargs: object) -> BreakerStore:
        """Open ``breakers.sqlite3`` in ``state_dir`` (default: :func:`default_state_dir`)."""
        directory = Path(state_dir) if state_dir is not None else default_state_dir()
        return cls(directory / DB_FILENAME, **kwargs)  # type: ignore[arg-type]

    def close(self) -> None:
        """Close the connection; the store cannot be used afterwards."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> BreakerStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def load(self, name: str, config: BreakerConfig) -> BreakerSnapshot:
        """The persisted state of breaker ``name`` (CLOSED if it has never been written)."""
        _check_name(name)
        with self._lock:
            try:
                row = self._read(name)
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
        if row is None:
            return BreakerSnapshot()
        return self._to_snapshot(row, config)[0]

    def transact(self, name: str, config: BreakerConfig, step: Callable[[Breaker], T]) -> T:
        """Apply ``step`` to breaker ``name`` atomically across processes and return its result.

        ``step`` must only drive the state machine (it may run twice: once on a plain read
        and, if it changed the state, again inside a write transaction on a fresh read).
        """
        _check_name(name)
        with self._lock:
            try:
                row = self._read(name)
                result, changed, _ = self._apply(row, config, step)
                if not changed:
                    return result
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    row = self._read(name)
                    result, changed, machine = self._apply(row, config, step)
                    if changed:
                        self._write(name, machine.snapshot)
                    self._conn.execute("COMMIT")
                except BaseException:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise
                return result
            except sqlite3.Error as exc:
                raise self._error(exc) from exc

    def _apply(self, row: _Row | None, config: BreakerConfig,
                    step: Callable[[Breaker], T]) -> tuple[T, bool, Breaker]:
        if row is None:
            before, rebased = BreakerSnapshot(), False
        else:
            before, rebased = self._to_snapshot(row, config)
        machine = Breaker(config, before)
        result = step(machine)
        return result, rebased or machine.snapshot != before, machine

    def _prepare(self) -> None:
        mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StateStoreError(
                f"circuit-breaker state {self.path}: SQLite refused WAL mode (got {mode!r}); "
                f"put the state directory on a local filesystem (set SPINE_STATE_DIR)")
        self._conn.execute("PRAGMA synchronous=FULL")
        check = self._conn.execute("PRAGMA quick_check").fetchall()
        if check != [("ok",)]:
            detail = "; ".join(str(r[0]) for r in check[:3])
            raise StateStoreError(self._corrupt_message(f"integrity check failed: {detail}"))
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                self._conn.execute(_SCHEMA)
                self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif version != SCHEMA_VERSION:
                raise StateStoreError(self._corrupt_message(
                    f"schema version {version}, this spine understands {SCHEMA_VERSION}"))
            columns = [r[1] for r in self._conn.execute("PRAGMA table_info(breakers)")]
            expected = [c.strip() for c in _COLUMNS.split(",")]
            if not columns or any(c not in columns for c in expected):
                raise StateStoreError(self._corrupt_message("the 'breakers' table is missing or incomplete"))
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def _read(self, name: str) -> _Row | None:
        found = self._conn.execute(f"SELECT {_COLUMNS} FROM breakers WHERE name = ?", (name,)).fetchone()
        if found is None:
            return None
        return self._parse_row(name, found)

    def _parse_row(self, name: str, raw: tuple[object, ...]) -> _Row:
        (state, failures, opened_at, opened_mono, trial_mono, boot_id, last_failure,
         last_failure_at, version) = raw
        try:
            parsed_state = BreakerState(state)
            if isinstance(failures, bool) or not isinstance(failures, int) or failures < 0:
                raise _Invalid(f"consecutive_failures={failures!r}")
            if not isinstance(boot_id, str) or not isinstance(version, int):
                raise _Invalid("boot_id/version of the wrong type")
            if last_failure is not None and not isinstance(last_failure, str):
                raise _Invalid("last_failure is not text")
            row = _Row(parsed_state, failures, _parse_time(opened_at), _parse_float(opened_mono),
                       _parse_float(trial_mono), boot_id, last_failure, _parse_time(last_failure_at), version)
            if row.state is not BreakerState.CLOSED and (row.opened_at is None or row.opened_at_monotonic is None):
                raise _Invalid(f"state {row.state.value} without opened_at")
        except (_Invalid, ValueError) as exc:  # ValueError: from BreakerState, fromisoformat
            raise StateStoreError(self._corrupt_message(f"row {name!r} is invalid ({exc})")) from exc
        return row

    def _to_snapshot(self, row: _Row, config: BreakerConfig) -> tuple[BreakerSnapshot, bool]:
        """Convert a row to monotonic times; the flag says the row must be rebased onto this boot."""
        mono_now = self.clock.monotonic()
        wall_now = self.clock.utc_now()
        same_boot = row.boot_id == self._boot_id
        opened_at: float | None = None
        trial_started_at: float | None = None
        if row.opened_at is not None and row.opened_at_monotonic is not None:
            if same_boot:
                opened_at = min(row.opened_at_monotonic, mono_now)
            else:
                elapsed = (wall_now - row.opened_at).total_seconds()
                opened_at = mono_now - min(max(elapsed, 0.0), float(config.cooldown))
        if same_boot and row.trial_started_monotonic is not None:
            trial_started_at = min(row.trial_started_monotonic, mono_now)
        last_failure_at = None
        if row.last_failure_at is not None:
            last_failure_at = mono_now - max((wall_now - row.last_failure_at).total_seconds(), 0.0)
        snapshot = BreakerSnapshot(row.state, row.consecutive_failures, opened_at, trial_started_at,
                                   row.last_failure, last_failure_at)
        return snapshot, not same_boot

    def _write(self, name: str, snap: BreakerSnapshot) -> None:
        mono_now = self.clock.monotonic()
        wall_now = self.clock.utc_now()

        def wall(t: float | None) -> str | None:
            if t is None:
                return None
            return (wall_now - timedelta(seconds=max(mono_now - t, 0.0))).isoformat(timespec="microseconds")

        last_failure = snap.last_failure[:MAX_FAILURE_TEXT] if snap.last_failure is not None else None
        self._conn.execute(
            "INSERT INTO breakers (name, state, consecutive_failures, opened_at, opened_at_monotonic,"
            " trial_started_monotonic, boot_id, last_failure, last_failure_at, version, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)"
            " ON CONFLICT(name) DO UPDATE SET state=excluded.state,"
            " consecutive_failures=excluded.consecutive_failures, opened_at=excluded.opened_at,"
            " opened_at_monotonic=excluded.opened_at_monotonic,"
            " trial_started_monotonic=excluded.trial_started_monotonic, boot_id=excluded.boot_id,"
            " last_failure=excluded.last_failure, last_failure_at=excluded.last_failure_at,"
            " version=breakers.version + 1, updated_at=excluded.updated_at",
            (name, snap.state.value, snap.consecutive_failures, wall(snap.opened_at), snap.opened_at,
             snap.trial_started_at, self._boot_id, last_failure, wall(snap.last_failure_at),
             wall_now.isoformat(timespec="microseconds")))

    def _corrupt_message(self, what: str) -> str:
        return (f"circuit-breaker state database {self.path} is unusable: {what}. "
                f"To reset every breaker to CLOSED, stop the processes using it and move it aside "
                f"(mv {self.path} {self.path}.bad; rm -f {self.path}-wal {self.path}-shm), "
                f"or restore it from a backup")

    def _error(self, exc: sqlite3.Error) -> StateStoreError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return StateStoreError(
                f"circuit-breaker state database {self.path} is locked by another process ({text}); "
                f"find it with: fuser {self.path}")
        return StateStoreError(self._corrupt_message(f"{type(exc).__name__}: {text}"))


class _Invalid(StateStoreError):
    """A field of a stored row is invalid (reported as the whole store being corrupt)."""


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH:
        raise ConfigError(f"breaker name must be a non-empty string of at most {MAX_NAME_LENGTH} characters")


def _parse_time(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid(f"time {value!r} is not text")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise _Invalid(f"time {value!r} has no timezone")
    return parsed.astimezone(timezone.utc)


def _parse_float(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _Invalid(f"number {value!r} is not finite")
    return float(value)
