"""Where the state directory is: SPINE_STATE_DIR, then systemd's STATE_DIRECTORY, then ./state."""

from __future__ import annotations

from pathlib import Path

import pytest

from spine.resilience.paths import default_state_dir, ensure_state_dir


def test_spine_state_dir_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPINE_STATE_DIR", "/srv/spine")
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/spine")
    assert default_state_dir() == Path("/srv/spine")


def test_systemd_state_directory_is_next_and_its_first_entry_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPINE_STATE_DIR", raising=False)
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/spine:/var/lib/other")
    assert default_state_dir() == Path("/var/lib/spine")


def test_without_either_it_is_state_in_the_working_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPINE_STATE_DIR", raising=False)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    assert default_state_dir() == Path("state")


def test_ensure_state_dir_creates_a_private_directory(tmp_path: Path) -> None:
    made = ensure_state_dir(tmp_path / "a" / "state")
    assert made.is_dir() and made.stat().st_mode & 0o777 == 0o700
