"""Crashed writers: partial frames are never returned, dead writers are noticed, restarts take over safely."""

from __future__ import annotations

import signal
import subprocess

import numpy as np
import pytest

from shmtest_support import cleanup, compile_tool, pattern_frame, unique_name
from spine.errors import ShmError, ShmFrameOverwritten, ShmWriterGone
from spine.shm import WaveformReader, WaveformWriter, descriptor_for, read_descriptor

SLOTS, SIZE = 2, 65536


@pytest.fixture(scope="module")
def tool(tmp_path_factory):
    return compile_tool(tmp_path_factory.mktemp("crash"))


@pytest.fixture
def killed_mid_write(tool):
    """A segment whose C writer wrote frames 0-2 and was SIGKILLed between the two counter increments of frame 3."""
    name = unique_name("crash")
    proc = subprocess.Popen([str(tool), "crash", name, str(SLOTS), str(SIZE)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "mid-write"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        yield name
    finally:
        proc.kill()
        proc.wait()
        cleanup(name)


def test_reader_never_returns_the_slot_a_killed_writer_was_writing(killed_mid_write):
    with WaveformReader(killed_mid_write) as reader:
        assert reader.frame_count == 3
        # frame 3 was going into slot 1, over frame 1: neither may come back
        with pytest.raises(ShmFrameOverwritten):
            reader.read_frame(1)
        with pytest.raises(ShmError, match="not been written"):
            reader.read_frame(3)
        latest = reader.read_latest()
        assert latest.frame_index == 2
        np.testing.assert_array_equal(np.frombuffer(latest.data, np.uint64), pattern_frame(2, SIZE))
        with reader.view_latest() as view:
            assert view.frame_index == 2


def test_reader_detects_that_the_writer_is_gone(killed_mid_write):
    with WaveformReader(killed_mid_write) as reader:
        assert not reader.writer_alive()
        reader.read_next()  # nothing after the frames committed before opening
        with pytest.raises(ShmWriterGone):
            reader.wait_next(timeout=5)


def test_restarted_writer_takes_over_and_readers_carry_on(killed_mid_write):
    with WaveformReader(killed_mid_write) as reader:
        old_generation = reader.generation
        with WaveformWriter(killed_mid_write, SIZE, SLOTS) as writer:
            assert writer.took_over
            assert reader.generation == old_generation + 1
            assert reader.writer_alive()
            with pytest.raises(ShmFrameOverwritten):
                reader.read_frame(1)  # the half-written slot was closed as empty
            written = writer.write(pattern_frame(3, SIZE))
            assert (written.frame_index, written.slot_index) == (3, 1)
            frame = reader.wait_next(timeout=5)
            assert frame.frame_index == 3
            np.testing.assert_array_equal(np.frombuffer(frame.data, np.uint64), pattern_frame(3, SIZE))
            assert read_descriptor(reader, descriptor_for(writer, written)).frame_index == 3


def test_restarted_writer_with_another_geometry_replaces_the_stale_segment(killed_mid_write):
    with WaveformReader(killed_mid_write) as stale_reader:
        with WaveformWriter(killed_mid_write, SIZE * 2, 4) as writer:
            assert not writer.took_over
            assert writer.segment_id != stale_reader.segment_id
            written = writer.write(b"fresh")
            with pytest.raises(ShmError, match="recreated"):
                read_descriptor(stale_reader, descriptor_for(writer, written))
            assert not stale_reader.writer_alive()
            with WaveformReader(killed_mid_write) as reader:
                assert bytes(read_descriptor(reader, descriptor_for(writer, written)).data) == b"fresh"


def test_second_writer_cannot_take_a_live_writers_segment():
    name = unique_name("live")
    try:
        with WaveformWriter(name, 4096, 4):
            with pytest.raises(ShmError, match="live process"):
                WaveformWriter(name, 4096, 4)
    finally:
        cleanup(name)
