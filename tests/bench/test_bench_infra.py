"""The infrastructure every benchmark shares: nearest-rank percentiles, the pacer, role processes."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram

from spine.bench.pacing import Pacer
from spine.bench.procs import SPAWN, RoleProcess
from spine.bench.stats import percentile, summary
from spine.errors import BenchError, ConfigError

# --- percentiles -------------------------------------------------------------------


@pytest.mark.parametrize("p, expected", [(5, 15), (30, 20), (40, 20), (50, 35), (60, 35), (60.1, 40), (100, 50)])
def test_percentile_is_the_nearest_rank_never_an_interpolation(p, expected):
    assert percentile([15, 20, 35, 40, 50], p) == expected
    assert percentile([50, 15, 40, 20, 35], p) == expected  # order does not matter


def test_percentile_ranks_are_exact_where_floating_point_is_not():
    # 99.9 % of 1000 is 999.0000000000001 in floating point: rank 999, not 1000
    assert percentile(range(1, 1001), 99.9) == 999
    assert percentile(range(1, 10001), 99.99) == 9999
    assert percentile(range(1, 101), 99) == 99
    assert percentile([7.5], 0.001) == percentile([7.5], 100) == 7.5


def test_percentile_of_raw_samples_matches_the_hdr_histogram_of_the_same_samples():
    # below 2048 a value is recorded exactly at 3 digits; 10,000 samples make every rank whole
    # (where p·n/100 is not, hdrh rounds the rank to the nearest and nearest rank takes the next)
    samples = np.random.default_rng(7).integers(1, 2000, 10_000)
    hist = HdrHistogram(1, 3600 * 10**9, 3)
    for v in samples.tolist():
        hist.record_value(v)
    for p in (1, 10, 50, 90, 99, 99.9, 99.99, 100):
        assert percentile(samples, p) == hist.get_value_at_percentile(p), p


def test_percentile_of_nothing_or_out_of_range_is_refused():
    with pytest.raises(BenchError) as caught:
        percentile([], 50)
    assert caught.value.reason == BenchError.INCOMPLETE
    with pytest.raises(ConfigError):
        percentile([1, 2], 0)
    with pytest.raises(ConfigError):
        percentile([1, 2], 100.5)


def test_summary_reports_count_points_max_and_mean_scaled():
    got = summary([3000, 1000, 2000, 4000], (("p50", 50.0), ("p99", 99.0)), scale=1e-3)
    assert got == {"n": 4, "p50": 2.0, "p99": 4.0, "max": 4.0, "mean": 2.5}
    assert set(summary([1.0])) == {"n", "p50", "p90", "p99", "p99_9", "max", "mean"}
    assert summary([]) == {"n": 0}


# --- the pacer -----------------------------------------------------------------------


class FakeTime:
    """A monotonic ns clock that moves 1 µs per reading (a spinning loop) and by what a sleep lasts."""

    def __init__(self, start_ns: int = 10**9, sleep_error_ns: int = 0) -> None:
        self.now = start_ns
        self.sleep_error_ns = sleep_error_ns
        self.sleeps: list[float] = []

    def clock(self) -> int:
        self.now += 1_000
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += int(seconds * 1e9) + self.sleep_error_ns


def test_pacer_sleeps_the_bulk_and_spins_the_last_stretch_to_the_deadline():
    t = FakeTime()
    pacer = Pacer(100_000, clock=t.clock, sleep=t.sleep)
    deadline = t.now + 1_000_000
    woke = pacer.sleep_until(deadline)
    assert len(t.sleeps) == 1 and t.sleeps[0] == pytest.approx(899e-6)  # 1 ms less the spin, less one reading
    assert deadline <= woke < deadline + 1_000  # the first reading at or past the deadline


def test_pacer_never_returns_early_even_when_the_sleep_does():
    t = FakeTime(sleep_error_ns=-50_000)  # a sleep that wakes 50 µs early
    pacer = Pacer(0, clock=t.clock, sleep=t.sleep)
    deadline = t.now + 2_000_000
    assert pacer.sleep_until(deadline) >= deadline


def test_pacer_does_not_sleep_for_a_deadline_within_the_spin_or_past():
    t = FakeTime()
    pacer = Pacer(100_000, clock=t.clock, sleep=t.sleep)
    assert pacer.sleep_until(t.now + 50_000) >= t.now - 1_000
    past = t.now - 5_000_000
    assert pacer.sleep_until(past) > past
    assert t.sleeps == []


def test_absolute_deadlines_do_not_drift_after_a_late_wake_up():
    t = FakeTime(sleep_error_ns=300_000)  # every sleep overshoots by 300 µs
    pacer = Pacer(0, clock=t.clock, sleep=t.sleep)
    start, period = t.now, 1_000_000
    woke = [pacer.sleep_until(start + k * period) for k in range(1, 11)]
    assert all(0 <= w - (start + k * period) < 400_000 for k, w in zip(range(1, 11), woke))


# --- role processes ----------------------------------------------------------------------


def _result_role(link, value: str) -> dict:
    link.ready()
    return {"value": value, "pid": os.getpid()}


def _serving_role(link) -> dict:
    link.ready()
    link.stop.wait()
    return {"stopped": True}


def _failing_role(link) -> dict:
    raise KeyError("the role broke")


def _silent_role(link) -> None:
    time.sleep(600)  # never says ready, ignores stop: only a kill ends it


def _scheduling_role(link) -> dict:
    link.ready()
    return {"nice": os.nice(0), "policy": os.sched_getscheduler(0)}


def test_a_role_returns_its_result_with_the_cpu_it_used_and_exits():
    role = RoleProcess("trivial", _result_role, ("hello",))
    try:
        role.wait_ready(30)
        role.go(time.monotonic_ns())
        got = role.result(30)
    finally:
        role.close()
    assert got["value"] == "hello" and got["pid"] == role.pid != os.getpid()
    assert got["cpu_s"] >= 0
    assert not role.is_alive()


def test_the_context_manager_starts_a_serving_role_and_stops_it_on_exit():
    with RoleProcess("server", _serving_role) as role:
        assert role.is_alive() and not role.has_result()
    assert not role.is_alive()


def test_a_spawned_role_runs_too():
    with RoleProcess("spawned", _result_role, ("spawned",), context=SPAWN) as role:
        assert role.result(60)["value"] == "spawned"


def test_a_failing_role_raises_bench_error_with_its_traceback():
    with pytest.raises(BenchError) as caught:
        with RoleProcess("breaks", _failing_role):
            pass
    exc = caught.value
    assert (exc.reason, exc.role) == (BenchError.ROLE_FAILED, "breaks")
    assert "KeyError: 'the role broke'" in str(exc)


def test_a_role_that_never_gets_ready_is_reported_with_the_timeout_and_killed():
    role = RoleProcess("silent", _silent_role)
    with pytest.raises(BenchError) as caught:
        role.wait_ready(0.5)
    assert (caught.value.reason, caught.value.role, caught.value.timeout) == (BenchError.NOT_READY, "silent", 0.5)
    role.close(timeout_s=0.2)
    assert not role.is_alive()


def test_bulk_work_runs_under_sched_idle():
    if not hasattr(os, "SCHED_IDLE"):
        pytest.skip("no SCHED_IDLE on this platform")
    with RoleProcess("bulk", _scheduling_role, nice=19) as role:
        got = role.result(30)
    assert got["nice"] == 19 and got["policy"] == os.SCHED_IDLE
