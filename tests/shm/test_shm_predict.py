"""The predictive wait: FramePredictor's decisions on a fake clock, and a real 1 kHz writer read with predict=True."""

from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shmtest_support import cleanup, unique_name
from spine.errors import ShmError
from spine.shm import WaveformReader, WaveformWriter
from spine.shm.predict import MIN_SAMPLES, OFF_LIMIT, FramePredictor

MS = 1_000_000


def learned(period: int = MS, start: int = 10 * MS, frames: int = MIN_SAMPLES, **kw) -> FramePredictor:
    p = FramePredictor(**kw)
    for i in range(frames):
        p.observe(i, start + i * period)
    return p


def test_nothing_is_predicted_until_enough_frames_were_waited_for():
    p = FramePredictor()
    for i in range(MIN_SAMPLES - 1):
        p.observe(i, i * MS)
        assert p.period_ns is None
        assert p.poll_window(i + 1, i * MS) is None
    p.observe(MIN_SAMPLES - 1, (MIN_SAMPLES - 1) * MS)
    assert p.period_ns == MS


def test_poll_window_opens_lead_before_the_frame_is_due_and_lasts_the_window():
    p = learned(lead_ns=80_000, window_ns=150_000)
    due = 10 * MS + MIN_SAMPLES * MS
    assert p.due_ns(MIN_SAMPLES) == due
    assert p.poll_window(MIN_SAMPLES, due - 500_000) == (due - 80_000, due + 70_000)


def test_window_already_open_is_still_returned_and_a_passed_window_falls_back_to_the_futex():
    p = learned(lead_ns=80_000, window_ns=150_000)
    due = p.due_ns(MIN_SAMPLES)
    assert p.poll_window(MIN_SAMPLES, due) == (due - 80_000, due + 70_000)
    assert p.poll_window(MIN_SAMPLES, due + 70_000) is None


def test_skipped_frames_keep_the_period_per_frame():
    p = FramePredictor()
    for i in (0, 1, 3, 4, 7):
        p.observe(i, i * MS)
    assert p.period_ns == MS
    assert p.due_ns(9) == 9 * MS


def test_late_wakeups_do_not_push_the_prediction_late():
    p = FramePredictor()
    delays = [0, 40_000, 5_000, 35_000] * 4
    for i, d in enumerate(delays):
        p.observe(i, i * MS + d)
    # the lower envelope: the earliest arrivals projected forward, not the latest one
    assert p.due_ns(16) <= 16 * MS + 10_000


def test_one_late_frame_is_left_out_and_the_schedule_kept():
    p = learned(frames=6, start=0)
    p.observe(6, 6 * MS + 800_000)  # a late tick; the writer catches up on its absolute deadlines
    p.observe(7, 7 * MS)
    assert p.period_ns == MS
    assert p.due_ns(8) == 8 * MS


def test_frames_far_off_their_prediction_several_times_in_a_row_restart_learning():
    p = learned(frames=6, start=0)
    for k in range(OFF_LIMIT):  # the writer paused and resumed with another phase
        assert p.period_ns == MS
        p.observe(6 + k, (6 + k) * MS + 600_000)
    assert p.period_ns is None
    assert p.poll_window(6 + OFF_LIMIT, (6 + OFF_LIMIT) * MS) is None
    for k in range(OFF_LIMIT, OFF_LIMIT + MIN_SAMPLES):
        p.observe(6 + k, (6 + k) * MS + 600_000)
    assert p.due_ns(20) == 20 * MS + 600_000


def test_a_stream_that_goes_back_restarts_learning():
    p = learned(frames=6)
    p.observe(2, 50 * MS)
    assert p.period_ns is None


def test_fast_streams_are_not_polled():
    p = learned(period=250_000, window_ns=150_000)
    assert p.period_ns == 250_000
    assert p.poll_window(MIN_SAMPLES, 0) is None


def test_reset_forgets_the_stream():
    p = learned()
    p.reset()
    assert p.period_ns is None


def test_bad_parameters_are_refused():
    with pytest.raises(ShmError, match="poll window"):
        FramePredictor(window_ns=0)
    with pytest.raises(ShmError, match="lead"):
        FramePredictor(lead_ns=-1)


@given(period=st.integers(200_000, 20 * MS), phase=st.integers(0, 10**12),
       jitter=st.lists(st.integers(0, 50_000), min_size=MIN_SAMPLES, max_size=40))
def test_any_periodic_stream_with_bounded_wakeup_delays_is_polled_around_its_due_time(period, phase, jitter):
    p = FramePredictor(lead_ns=80_000, window_ns=min(150_000, period // 3))
    for i, d in enumerate(jitter):
        p.observe(i, phase + i * period + d)
    n = len(jitter)
    true_due = phase + n * period
    assert p.period_ns is not None
    # the estimate stays within the delay spread of the truth
    assert abs(p.due_ns(n) - true_due) <= 50_000 + 50_000 * n // 2
    window = p.poll_window(n, phase + (n - 1) * period)
    assert window is not None
    start, end = window
    assert end - start == p.window_ns


# --- a real writer process at 1 kHz -----------------------------------------------

FRAMES, SIZE = 600, 65536
SLOTS = 256  # a reader held up by the host for up to 255 ms still misses nothing


def _stamp(buf: np.ndarray, k: int) -> None:
    buf.view(np.uint64)[:] = k


def _writer(name: str, ready, go) -> None:
    payload = np.zeros(SIZE, dtype=np.uint8)
    with WaveformWriter(name, SIZE, SLOTS) as writer:
        ready.set()
        go.wait(10)
        next_at = time.monotonic_ns()
        for k in range(FRAMES):
            while time.monotonic_ns() < next_at:
                left = next_at - time.monotonic_ns()
                if left > 200_000:
                    time.sleep((left - 150_000) / 1e9)
            _stamp(payload, k)
            writer.write(payload)
            next_at += MS
        go.wait(10)  # keep the segment until the reader is done


@pytest.fixture
def periodic_writer():
    name = unique_name("predict")
    ctx = mp.get_context("fork")
    ready, go = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_writer, args=(name, ready, go), daemon=True)
    proc.start()
    try:
        assert ready.wait(10)
        yield name, go
    finally:
        go.set()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join()
        cleanup(name)


def test_predictive_reader_of_a_1khz_writer_gets_every_frame_consistent(periodic_writer):
    name, go = periodic_writer
    out = np.empty(SIZE, dtype=np.uint8)
    seen, torn, skipped = [], 0, 0
    learned_once = False
    with WaveformReader(name) as reader:
        go.set()
        while len(seen) + skipped < FRAMES:
            if len(seen) % 2:
                frame = reader.wait_next(timeout=5.0, out=out, predict=True)
                assert frame is not None
                words = out.view(np.uint64)[: frame.data_size // 8]
                index, missed = frame.frame_index, frame.skipped
                torn += not bool(np.all(words == index))
            else:
                view = reader.wait_view(timeout=5.0, predict=True)
                assert view is not None
                with view:
                    words = np.frombuffer(view.data, dtype=np.uint64)
                    ok = bool(np.all(words == view.frame_index))
                    del words
                index, missed = view.frame_index, view.skipped
                torn += not ok
            seen.append(index)
            learned_once |= reader.predictor.period_ns is not None
            skipped += missed
    assert learned_once  # the predictive path was taken, not only the futex
    assert torn == 0
    assert skipped == 0
    assert seen == list(range(FRAMES))
