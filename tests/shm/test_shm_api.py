"""The Python API of the waveform channel: writing, the three ways of reading, waiting, closing."""

from __future__ import annotations

import os
import signal
import stat
import threading

import numpy as np
import pytest

from shmtest_support import cleanup, unique_name
from spine.errors import ShmError, ShmFrameOverwritten
from spine.shm import WaveformReader, WaveformWriter


@pytest.fixture
def channel():
    name = unique_name("api")
    writer = WaveformWriter(name, 4096, 4)
    reader = WaveformReader(name)
    try:
        yield writer, reader
    finally:
        reader.close()
        writer.close()
        cleanup(name)


def test_segment_is_private_and_unlinked_by_its_owner_on_close():
    name = unique_name("owner")
    writer = WaveformWriter(name, 4096, 2)
    try:
        assert stat.S_IMODE(os.stat(f"/dev/shm{name}").st_mode) == 0o600
    finally:
        writer.close()
    assert not os.path.exists(f"/dev/shm{name}")


def test_nothing_to_read_before_the_first_write(channel):
    _, reader = channel
    assert reader.read_latest() is None
    assert reader.read_next() is None
    with pytest.raises(ShmError, match="not been written"):
        reader.read_frame(0)


def test_numpy_frame_is_read_into_the_callers_array(channel):
    writer, reader = channel
    grid = np.arange(256, dtype=np.complex128)
    written = writer.write(grid, timestamp_ns=1234)
    out = np.zeros_like(grid)
    frame = reader.read_latest(out)
    np.testing.assert_array_equal(out, grid)
    assert np.shares_memory(np.frombuffer(frame.data, np.uint8), out)
    assert (frame.frame_index, frame.data_size, frame.timestamp_ns) == (0, grid.nbytes, 1234)
    assert frame.sequence_num == written.sequence_num and frame.sequence_num % 2 == 0


def test_read_latest_returns_the_newest_frame(channel):
    writer, reader = channel
    for i in range(10):
        writer.write(bytes([i]) * (i + 1))
    frame = reader.read_latest()
    assert frame.frame_index == 9 and bytes(frame.data) == bytes([9]) * 10


NEXT = {"read_next": lambda reader, out=None: reader.read_next(out),
        "wait_next": lambda reader, out=None: reader.wait_next(timeout=0, out=out)}
VIEW_NEXT = {"view_next": lambda reader: reader.view_next(), "wait_view": lambda reader: reader.wait_view(timeout=0)}


@pytest.mark.parametrize("take", [*NEXT.values(), *VIEW_NEXT.values()], ids=[*NEXT, *VIEW_NEXT])
def test_next_follows_in_order_and_counts_skipped_frames(channel, take):
    writer, reader = channel
    writer.write(b"a")
    writer.write(b"b")
    assert [bytes(take(reader).data) for _ in range(2)] == [b"a", b"b"]
    assert take(reader) is None
    for i in range(10):  # frames 2..11; a ring of 4 keeps at most the last 3 safely
        writer.write(bytes([i]))
    frame = take(reader)
    assert (frame.frame_index, frame.skipped) == (9, 7)
    assert [take(reader).frame_index for _ in range(2)] == [10, 11]
    assert take(reader) is None


@pytest.mark.parametrize("take", NEXT.values(), ids=NEXT.keys())
def test_next_into_a_destination_too_small_is_refused_and_the_frame_kept(channel, take):
    writer, reader = channel
    writer.write(bytes(100))
    with pytest.raises(ShmError, match="smaller than the 100-byte frame"):
        take(reader, bytearray(50))
    assert take(reader, bytearray(100)).frame_index == 0


def test_frame_larger_than_a_slot_is_refused(channel):
    writer, _ = channel
    with pytest.raises(ShmError, match="exceeds the slot size"):
        writer.write(bytes(4097))


def test_destination_too_small_is_refused(channel):
    writer, reader = channel
    writer.write(bytes(100))
    with pytest.raises(ShmError, match="smaller than the 100-byte frame"):
        reader.read_latest(bytearray(50))
    with pytest.raises(ShmError, match="writable"):
        reader.read_latest(b"read-only destination")


def test_zero_copy_view_is_validated_after_use(channel):
    writer, reader = channel
    writer.write(b"steady")
    with reader.view_latest() as view:
        assert bytes(view.data) == b"steady"
    with pytest.raises(ShmFrameOverwritten):
        with reader.view_latest() as view:
            for _ in range(4):  # lap the ring: the viewed slot is rewritten
                writer.write(b"newer!")
            assert not view.valid()


def test_wait_next_times_out_without_a_frame(channel):
    _, reader = channel
    assert reader.wait_next(timeout=0.05) is None


def _wait_and_keep_bytes(reader: WaveformReader, in_place: bool) -> bytes:
    if not in_place:
        return bytes(reader.wait_next(timeout=30).data)
    with reader.wait_view(timeout=30) as view:
        return bytes(view.data)


@pytest.mark.parametrize("in_place", [False, True], ids=["wait_next", "wait_view"])
def test_waiting_reader_wakes_for_a_frame_written_by_another_thread(channel, in_place):
    writer, reader = channel
    got = []
    waiting = threading.Thread(target=lambda: got.append(_wait_and_keep_bytes(reader, in_place)))
    waiting.start()
    writer.write(b"wake up")  # the GIL is released while the reader sleeps, or this would deadlock
    waiting.join(30)
    assert not waiting.is_alive()
    assert got == [b"wake up"]


class Interrupted(Exception):
    pass


def test_a_signal_interrupts_wait_next_and_its_handler_runs(channel):
    _, reader = channel
    main = threading.get_ident()
    caught = threading.Event()

    def interrupt(signum, frame):
        if not caught.is_set():  # once: a late signal must not raise again during the cleanup
            caught.set()
            raise Interrupted

    def keep_signalling():  # until the handler has run: the first signal may come before the futex wait
        while not caught.wait(0.01):
            signal.pthread_kill(main, signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, interrupt)
    sender = threading.Thread(target=keep_signalling)
    try:
        sender.start()
        with pytest.raises(Interrupted):
            reader.wait_next(timeout=60)
    finally:
        caught.set()
        sender.join()
        signal.signal(signal.SIGUSR1, previous)


def test_names_are_normalised_and_checked():
    with pytest.raises(ShmError, match="invalid shared-memory segment name"):
        WaveformWriter("a/b", 4096, 2)
