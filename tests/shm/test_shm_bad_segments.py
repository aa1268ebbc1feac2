"""A reader opening a segment that is not a valid spine segment gets a clear error, never a crash."""

from __future__ import annotations

import mmap
import os
import struct

import posix_ipc
import pytest

from shmtest_support import cleanup, unique_name
from spine.errors import ShmError, ShmLayoutError
from spine.shm import WaveformReader, WaveformWriter, _seqlock


@pytest.fixture
def good_image():
    """The bytes of a freshly created, valid segment with 4 slots of 4096 bytes."""
    name = unique_name("image")
    with WaveformWriter(name, 4096, 4) as writer:
        writer.write(b"frame")
        with open(f"/dev/shm{name}", "rb") as f:
            image = f.read()
    return bytearray(image)


@pytest.fixture
def raw_segment():
    """Factory: a segment holding exactly the given bytes, with the given mode."""
    names = []

    def make(content: bytes, mode: int = 0o600) -> str:
        name = unique_name("raw")
        names.append(name)
        shm = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, mode=mode, size=len(content))
        os.fchmod(shm.fd, mode)
        with mmap.mmap(shm.fd, len(content)) as m:
            m[:] = content
        shm.close_fd()
        return name

    yield make
    for name in names:
        cleanup(name)


def patched(image: bytearray, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(image)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def test_valid_image_opens(good_image, raw_segment):
    with WaveformReader(raw_segment(bytes(good_image))) as reader:
        assert bytes(reader.read_latest().data) == b"frame"


def test_wrong_magic_is_refused(good_image, raw_segment):
    with pytest.raises(ShmLayoutError, match="magic"):
        WaveformReader(raw_segment(patched(good_image, 0, "<Q", 0x1122334455667788)))


def test_uninitialised_segment_is_refused(raw_segment):
    with pytest.raises(ShmLayoutError, match="magic"):
        WaveformReader(raw_segment(bytes(8192)))


def test_wrong_layout_version_is_refused(good_image, raw_segment):
    with pytest.raises(ShmLayoutError, match="layout version 2"):
        WaveformReader(raw_segment(patched(good_image, 8, "<I", 2)))


def test_segment_smaller_than_a_header_is_refused(raw_segment):
    with pytest.raises(ShmLayoutError, match="truncated"):
        WaveformReader(raw_segment(b"SPINESHM" + bytes(100)))


def test_truncated_segment_is_refused(good_image, raw_segment):
    with pytest.raises(ShmLayoutError, match="truncated"):
        WaveformReader(raw_segment(bytes(good_image[: len(good_image) - 4096])))


@pytest.mark.parametrize(
    "offset, fmt, value",
    [
        (16, "<I", 0),  # no slots
        (16, "<I", 2**31),  # absurd slot count
        (24, "<Q", 2**60),  # absurd slot size
        (24, "<Q", 3),  # slot smaller than a word
        (56, "<Q", 2**62),  # total size contradicting the geometry
        (48, "<Q", 64),  # payload overlapping the header
        (12, "<I", 64),  # header size
    ],
)
def test_absurd_or_inconsistent_geometry_is_refused(good_image, raw_segment, offset, fmt, value):
    with pytest.raises(ShmLayoutError, match="geometry"):
        WaveformReader(raw_segment(patched(good_image, offset, fmt, value)))


def test_segment_readable_by_others_is_refused(good_image, raw_segment):
    with pytest.raises(ShmError, match="mode 644"):
        WaveformReader(raw_segment(bytes(good_image), mode=0o644))


def test_missing_segment_says_so():
    with pytest.raises(ShmError, match="does not exist"):
        WaveformReader(unique_name("missing"))


def test_extension_refuses_a_buffer_that_is_not_a_segment():
    with pytest.raises(ValueError, match="not a valid spine segment|aligned"):
        _seqlock.read_latest(bytearray(4096), bytearray(16), 1)
    with pytest.raises(ValueError):
        _seqlock.write(mmap.mmap(-1, 4096), b"x", 0)


def test_absurd_writer_geometry_is_refused():
    with pytest.raises(ShmLayoutError):
        WaveformWriter(unique_name("absurd"), 2**50, 4)
    with pytest.raises(ShmLayoutError):
        WaveformWriter(unique_name("absurd"), 4096, 0)
