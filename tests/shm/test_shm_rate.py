"""DescriptorRate: which frames get a descriptor (every Nth, at most R per second), driven by a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spine.errors import ConfigError
from spine.shm.rate import DescriptorRate


def due_frames(rate: DescriptorRate, times: list[float]) -> list[int]:
    return [i for i, t in enumerate(times) if rate.frame(t)]


def test_every_frame_is_due_by_default():
    assert due_frames(DescriptorRate(), [i * 1e-3 for i in range(5)]) == [0, 1, 2, 3, 4]


def test_every_nth_frame_starting_with_the_first():
    assert due_frames(DescriptorRate(every=3), [i * 1e-3 for i in range(10)]) == [0, 3, 6, 9]


def test_rate_limit_keeps_its_phase_so_a_1khz_writer_announces_60_per_second():
    rate = DescriptorRate(max_rate_hz=60)
    announced = due_frames(rate, [i * 1e-3 for i in range(10_000)])
    assert len(announced) == 600
    assert announced[:4] == [0, 17, 34, 50]


def test_rate_limit_does_not_burst_to_catch_up_after_an_idle_spell():
    rate = DescriptorRate(max_rate_hz=100)
    assert rate.frame(0.0)
    assert rate.frame(5.0)          # long idle: due at once
    assert not rate.frame(5.001)    # and the grid restarted at 5.0, not at 0.01
    assert not rate.frame(5.0099)
    assert rate.frame(5.01)


def test_every_and_rate_limit_must_both_allow_a_frame():
    rate = DescriptorRate(every=2, max_rate_hz=100)
    times = [0.0, 0.001, 0.002, 0.011, 0.012, 0.013, 0.021]
    # frame 2 is the 2nd since frame 0 but early; frame 3 is on time; frame 4 is only the 1st since;
    # frame 5 is the 2nd but early (next tick 0.02); frame 6 is both
    assert due_frames(rate, times) == [0, 3, 6]


@settings(max_examples=200, deadline=None)
@given(gaps=st.lists(st.floats(min_value=0.0, max_value=0.05), min_size=1, max_size=300),
       hz=st.floats(min_value=1.0, max_value=2000.0), window=st.floats(min_value=0.0, max_value=1.0))
def test_no_stretch_of_time_holds_more_than_the_rate_allows(gaps, hz, window):
    times, t = [], 0.0
    for g in gaps:
        t += g
        times.append(t)
    rate = DescriptorRate(max_rate_hz=hz)
    announced = [times[i] for i in due_frames(rate, times)]
    for i, start in enumerate(announced):
        inside = sum(1 for x in announced[i:] if x - start <= window)
        assert inside < window * hz + 2


@pytest.mark.parametrize("kwargs", [{"every": 0}, {"every": 1.5}, {"every": True}, {"max_rate_hz": 0},
                                    {"max_rate_hz": -5}, {"max_rate_hz": float("inf")}])
def test_nonsense_settings_are_refused(kwargs):
    with pytest.raises(ConfigError):
        DescriptorRate(**kwargs)
