"""The duplicate-request window: remembers ids by age and by count, never without bound."""

from __future__ import annotations

import pytest

from spine.errors import ConfigError, EnvelopeError
from spine.resilience.dedup import DedupWindow


def test_a_repeated_request_id_within_the_window_is_a_duplicate() -> None:
    window = DedupWindow(max_age=10)
    assert not window.is_duplicate("req-1", 0.0)
    assert window.is_duplicate("req-1", 9.9)
    assert not window.is_duplicate("req-2", 9.9)
    assert window.duplicates == 1


def test_ids_older_than_max_age_are_forgotten() -> None:
    window = DedupWindow(max_age=10)
    window.is_duplicate("req-1", 0.0)
    assert not window.is_duplicate("req-1", 10.0)
    assert len(window) == 1


def test_the_oldest_ids_are_evicted_beyond_max_entries() -> None:
    window = DedupWindow(max_entries=3, max_age=100)
    for i in range(4):
        window.is_duplicate(f"req-{i}", float(i))
    assert len(window) == 3
    assert not window.is_duplicate("req-0", 5.0)
    assert window.is_duplicate("req-3", 5.0)


def test_bytes_ids_work_too() -> None:
    window = DedupWindow()
    assert not window.is_duplicate(b"\x01" * 16, 0.0)
    assert window.is_duplicate(b"\x01" * 16, 0.1)


@pytest.mark.parametrize("bad", ["", b"", "x" * 65])
def test_empty_or_oversized_ids_are_refused(bad: str | bytes) -> None:
    with pytest.raises(EnvelopeError):
        DedupWindow().is_duplicate(bad, 0.0)


def test_window_bounds_must_be_positive() -> None:
    with pytest.raises(ConfigError):
        DedupWindow(max_entries=0)
    with pytest.raises(ConfigError):
        DedupWindow(max_age=0)
