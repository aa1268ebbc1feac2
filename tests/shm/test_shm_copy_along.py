"""Copying along behind a write: a reader woken as a write begins copies its published chunks, never a torn frame."""

from __future__ import annotations

import multiprocessing as mp
import os
import time

import numpy as np
import pytest

from shmtest_support import cleanup, unique_name
from spine.errors import ShmError
from spine.shm import WaveformReader, WaveformWriter

SIZE = (1 << 20) + 24  # 16 chunks and a tail that is not a whole chunk
FRAMES = 300


def _frame(k: int) -> np.ndarray:
    """Every word of frame k differs from every word of any other frame: a mix of two frames shows."""
    return np.arange(SIZE // 8, dtype=np.uint64) * np.uint64(1_000_003) + np.uint64(k << 40)


def _writer(name: str, slots: int, gap_s: float, ready, go, done) -> None:
    frames = [_frame(k).view(np.uint8) for k in range(4)]
    with WaveformWriter(name, SIZE, slots) as writer:
        ready.set()
        go.wait(10)
        k = 0
        while not done.is_set() and k < FRAMES * 50:
            payload = frames[k % 4]
            payload.view(np.uint64)[0] = k  # the frame number, also in the first word
            writer.write(payload)
            k += 1
            if gap_s:
                deadline = time.monotonic() + gap_s
                while time.monotonic() < deadline:  # pacing the writer, not synchronising the test
                    pass
        done.wait(30)


@pytest.fixture(params=[("paced", 8, 0.002), ("lapping", 2, 0.0)], ids=lambda p: p[0])
def running_writer(request):
    _, slots, gap = request.param
    name = unique_name("along")
    ctx = mp.get_context("fork")
    ready, go, done = ctx.Event(), ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_writer, args=(name, slots, gap, ready, go, done), daemon=True)
    proc.start()
    try:
        assert ready.wait(10)
        yield name, go
    finally:
        done.set()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join()
        cleanup(name)


def _consistent(out: np.ndarray, k: int) -> bool:
    words = out.view(np.uint64)[: SIZE // 8]
    want = _frame(k % 4)
    want[0] = k
    return bool(np.array_equal(words, want))


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="copying along needs the writer on another CPU")
def test_a_reader_copying_along_behind_the_writer_gets_only_whole_frames(running_writer):
    """Paced: the reader sleeps between frames and copies along; lapping: two slots, the writer at full speed."""
    name, go = running_writer
    out = np.zeros(SIZE + 8, dtype=np.uint8)
    got = torn = laps = 0
    last = -1
    with WaveformReader(name) as reader:
        go.set()
        while got < FRAMES and laps < 20 * FRAMES:
            try:
                frame = reader.wait_next(timeout=10.0, out=out)
            except ShmError as exc:  # two slots and a full-speed writer: a lapped reader is told so
                assert "lapped" in str(exc)
                laps += 1
                continue
            assert frame is not None
            assert frame.data_size == SIZE and frame.frame_index > last
            last = frame.frame_index
            got += 1
            torn += not _consistent(out, frame.frame_index)
    assert got >= FRAMES // 10
    assert torn == 0


def test_a_destination_too_small_for_the_frame_being_written_is_an_error_not_a_partial_copy(running_writer):
    name, go = running_writer
    out = np.zeros(SIZE - 8, dtype=np.uint8)
    with WaveformReader(name) as reader:
        go.set()
        with pytest.raises(ShmError, match="bytes"):
            reader.wait_next(timeout=10.0, out=out)


def test_follow_us_out_of_range_is_refused():
    with pytest.raises(ShmError, match="follow_us"):
        WaveformReader("/whatever", follow_us=-1)
