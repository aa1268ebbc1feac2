"""Fixtures for the resilience tests: a controllable clock and a throw-away state directory."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest


class FakeClock:
    """Monotonic and wall time that move only when the test says so."""

    def __init__(self, mono: float = 1000.0, wall: datetime | None = None) -> None:
        self.mono = mono
        self.wall = wall or datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)

    def monotonic(self) -> float:
        return self.mono

    def utc_now(self) -> datetime:
        return self.wall

    def advance(self, seconds: float) -> None:
        """Let real time pass: both clocks move together."""
        self.mono += seconds
        self.wall += timedelta(seconds=seconds)

    def set_wall(self, seconds: float) -> None:
        """Step only the wall clock (an NTP correction or a bad RTC), by ``seconds`` (may be negative)."""
        self.wall += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"
