"""The adaptive busy-poll policy, driven without a loop or a clock."""

import pytest

from spine.broker.spin import AdaptiveSpin
from spine.errors import ConfigError


def test_a_zero_window_never_spins():
    assert not AdaptiveSpin(0.0).should_spin()


def test_spins_while_spins_keep_ending_with_a_message():
    spin = AdaptiveSpin(250e-6)
    for _ in range(100):
        assert spin.should_spin()
        spin.record(True)
    assert spin.score > 0.99


def test_stops_spinning_once_spins_run_out_empty():
    spin = AdaptiveSpin(250e-6, threshold=0.5, weight=0.1)
    spin.record(False)  # 0.5 -> 0.45: below the threshold at once
    assert not spin.should_spin()


def test_probes_once_in_probe_every_while_below_the_threshold():
    spin = AdaptiveSpin(250e-6, probe_every=8)
    spin.record(False)
    decisions = [spin.should_spin() for _ in range(24)]
    assert decisions.count(True) == 3 and decisions[7] and decisions[15] and decisions[23]


def test_a_successful_probe_brings_spinning_back():
    spin = AdaptiveSpin(250e-6, weight=0.5, probe_every=4)
    spin.record(False)  # 0.25
    for _ in range(3):
        assert not spin.should_spin()
    assert spin.should_spin()  # the probe
    spin.record(True)  # 0.625
    assert spin.should_spin()
    assert (spin.spins, spin.hits) == (2, 1)


@pytest.mark.parametrize("kwargs", [dict(window_s=-1), dict(window_s=1e-4, threshold=0),
                                    dict(window_s=1e-4, weight=2), dict(window_s=1e-4, probe_every=0)])
def test_nonsense_settings_are_refused(kwargs):
    with pytest.raises(ConfigError):
        AdaptiveSpin(**kwargs)
