"""The writing side of the waveform channel: one process writes frames into a ring and never waits."""

from __future__ import annotations

import logging
import mmap
import os
import secrets
import time
from dataclasses import dataclass
from types import TracebackType

import posix_ipc

from spine.errors import ShmError, ShmLayoutError
from spine.shm import _seqlock
from spine.shm.segment import (
    Geometry,
    check_layout,
    create_segment,
    normalize_name,
    open_segment,
    process_alive,
    start_ticks,
    unlink_segment,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WrittenFrame:
    """What a write committed: enough to build a WaveformSHM descriptor."""

    frame_index: int
    slot_index: int
    sequence_num: int
    data_size: int
    timestamp_ns: int
    committed_ns: int = 0  # time.monotonic_ns() just before the commit (before sleeping readers were woken)


class WaveformWriter:
    """Owner and only writer of a named ring of `slot_count` slots of `slot_size` bytes in /dev/shm.

    Creating a writer creates the segment (mode 0600).  If a segment of that
    name exists and its writer is dead, a writer with the same geometry takes it
    over (readers that have it mapped carry on; half-written slots are closed as
    empty) and one with another geometry replaces it.  A live writer's segment
    is never touched: ShmError.  `close()` unlinks the segment.
    """

    def __init__(self, name: str, slot_size: int, slot_count: int = 8) -> None:
        self.name = normalize_name(name)
        self.geometry = Geometry.of(slot_count, slot_size)
        self._pid = os.getpid()
        self._ticks = start_ticks(self._pid) or 0
        self.took_over = False
        try:
            self._map = self._initialise(create_segment(self.name, self.geometry.total_size))
        except posix_ipc.ExistentialError:
            self._map = self._take_over_or_replace()
        self.segment_id: int = _seqlock.header(self._map)[2]

    def _initialise(self, mapping: mmap.mmap) -> mmap.mmap:
        _seqlock.init(mapping, self.geometry.slot_count, self.geometry.slot_size, secrets.randbits(64), time.time_ns())
        if not _seqlock.claim(mapping, self._pid, self._ticks, 0):
            mapping.close()
            raise ShmError(f"could not claim the segment {self.name!r} this process just created")
        return mapping

    def _take_over_or_replace(self) -> mmap.mmap:
        mapping = open_segment(self.name)
        try:
            check_layout(self.name, mapping)
        except ShmLayoutError:
            mapping.close()
            raise
        count, size, _, _, pid, ticks, _, _ = _seqlock.header(mapping)
        if process_alive(pid, ticks):
            mapping.close()
            raise ShmError(f"shared-memory segment {self.name!r} is being written by live process {pid}: "
                           "stop that writer or pick another name")
        if (count, size) == (self.geometry.slot_count, self.geometry.slot_size):
            if not _seqlock.claim(mapping, self._pid, self._ticks, pid):
                mapping.close()
                raise ShmError(f"another writer took over shared-memory segment {self.name!r} first")
            self.took_over = True
            log.warning("took over stale shm segment %s from dead writer pid %d", self.name, pid)
            return mapping
        mapping.close()
        log.warning("replacing stale shm segment %s of dead writer pid %d (geometry %dx%d, want %dx%d)",
                    self.name, pid, count, size, self.geometry.slot_count, self.geometry.slot_size)
        unlink_segment(self.name)
        try:
            return self._initialise(create_segment(self.name, self.geometry.total_size))
        except posix_ipc.ExistentialError:
            raise ShmError(f"shared-memory segment {self.name!r} was recreated by someone else meanwhile") from None

    @property
    def slot_size(self) -> int:
        """Largest frame, in bytes, one slot holds."""
        return self.geometry.slot_size

    @property
    def slot_count(self) -> int:
        """Slots in the ring: how many frames a reader may lag before it misses some."""
        return self.geometry.slot_count

    @property
    def generation(self) -> int:
        """How many writers have held this segment (1 for the creator, +1 per takeover)."""
        return _seqlock.header(self._map)[6]

    def write(self, data, timestamp_ns: int | None = None) -> WrittenFrame:
        """Commit one frame from any contiguous buffer (bytes, bytearray, numpy array); never blocks.

        `timestamp_ns` is the physics tick (default: now, Unix ns).  Raises
        ShmError if the frame is larger than a slot.
        """
        if timestamp_ns is None:
            timestamp_ns = time.time_ns()
        try:
            _, frame, slot, seq, size, ts, committed = _seqlock.write(self._map, data, timestamp_ns)
        except ValueError as e:
            raise ShmError(f"cannot write to {self.name!r}: {e}") from None
        return WrittenFrame(frame, slot, seq, size, ts, committed)

    def close(self) -> None:
        """Give up the writer role and unlink the segment (readers' existing mappings stay valid)."""
        if self._map.closed:
            return
        _seqlock.release(self._map, self._pid)
        self._map.close()
        unlink_segment(self.name)

    def __enter__(self) -> WaveformWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
