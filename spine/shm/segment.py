"""Opening, validating and mapping POSIX shared-memory segments for the waveform channel.

Policy that does not belong in C lives here: segment names, permissions, the
messages a person sees when a segment is not what it should be, and telling
whether a writer process is still alive.
"""

from __future__ import annotations

import mmap
import os
import stat
from dataclasses import dataclass

import posix_ipc

from spine.errors import ShmError, ShmLayoutError
from spine.shm import _seqlock

SEGMENT_MODE = 0o600
# fault every page in at map time: a 1 kHz writer or reader must not take page faults on its first lap
_MAP_FLAGS = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)


def normalize_name(name: str) -> str:
    """Return the POSIX shm name for `name` ("/name"), refusing names that are not one path component."""
    bare = name[1:] if name.startswith("/") else name
    if not bare or "/" in bare or len(bare) > 250 or bare in (".", ".."):
        raise ShmError(f"invalid shared-memory segment name {name!r}: use one word such as 'physics-grid'")
    return "/" + bare


@dataclass(frozen=True)
class Geometry:
    """Where things are in a segment with `slot_count` slots of `slot_size` bytes."""

    slot_count: int
    slot_size: int
    ctrl_offset: int
    payload_offset: int
    slot_stride: int
    total_size: int

    @classmethod
    def of(cls, slot_count: int, slot_size: int) -> Geometry:
        """Compute the layout, or raise ShmLayoutError if the slot count or size is absurd."""
        if slot_count < 1 or slot_size < 8:
            raise ShmLayoutError(f"slot_count {slot_count} / slot_size {slot_size}: need at least 1 slot of 8 bytes")
        g = _seqlock.geometry(slot_count, slot_size)
        if g is None:
            raise ShmLayoutError(
                f"slot_count {slot_count} x slot_size {slot_size} is out of range "
                f"(at most {_seqlock.MAX_SLOTS} slots of {_seqlock.MAX_SLOT_SIZE} bytes, 1 TiB in all)"
            )
        return cls(slot_count, slot_size, *g)

    def payload_range(self, slot: int, size: int) -> tuple[int, int]:
        """Byte range [start, end) of the first `size` payload bytes of `slot`."""
        start = self.payload_offset + slot * self.slot_stride
        return start, start + size


_LAYOUT_MESSAGES = {
    _seqlock.E_TOO_SMALL: "is smaller than a segment header ({size} bytes): not a spine waveform segment",
    _seqlock.E_MAGIC: "has no spine magic number: not a spine waveform segment, or its writer has not finished "
    "creating it",
    _seqlock.E_VERSION: "has layout version {version}, this spine reads version {expected}: upgrade the older side",
    _seqlock.E_GEOMETRY: "declares an absurd or inconsistent geometry (slot_count {slot_count}, slot_size "
    "{slot_size}): the header is corrupt",
    _seqlock.E_TRUNCATED: "is truncated: {size} bytes where its header needs {total}; its writer died while "
    "creating it, or something shrank it",
}


def check_layout(name: str, mapping: mmap.mmap) -> None:
    """Raise ShmLayoutError, saying what is wrong, unless `mapping` holds a valid segment."""
    status = _seqlock.validate(mapping)
    if status == _seqlock.OK:
        return
    size = len(mapping)
    fields = {"size": size, "expected": _seqlock.LAYOUT_VERSION, "version": "?", "slot_count": "?",
              "slot_size": "?", "total": "?"}
    if size >= 64:
        fields["version"] = int.from_bytes(mapping[8:12], "little")
        fields["slot_count"] = int.from_bytes(mapping[16:20], "little")
        fields["slot_size"] = int.from_bytes(mapping[24:32], "little")
        fields["total"] = int.from_bytes(mapping[56:64], "little")
    template = _LAYOUT_MESSAGES.get(status, "failed layout validation (status {status})")
    raise ShmLayoutError(f"shared-memory segment {name!r} " + template.format(status=status, **fields))


def create_segment(name: str, size: int) -> mmap.mmap:
    """Create segment `name` of `size` zero bytes, mode 0600; raise posix_ipc.ExistentialError if it exists."""
    shm = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, mode=SEGMENT_MODE, size=size)
    try:
        return mmap.mmap(shm.fd, size, flags=_MAP_FLAGS)
    finally:
        shm.close_fd()


def open_segment(name: str) -> mmap.mmap:
    """Map an existing segment read-write after checking it is ours and private; does not check its layout."""
    try:
        shm = posix_ipc.SharedMemory(name)
    except posix_ipc.ExistentialError:
        raise ShmError(f"shared-memory segment {name!r} does not exist: is its writer running?") from None
    except posix_ipc.PermissionsError:
        raise ShmError(f"no permission to open shared-memory segment {name!r}: run as its writer's user") from None
    try:
        st = os.fstat(shm.fd)
        if st.st_uid != os.getuid():
            raise ShmError(f"shared-memory segment {name!r} belongs to uid {st.st_uid}, not to us: refusing it")
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise ShmError(
                f"shared-memory segment {name!r} has mode {stat.S_IMODE(st.st_mode):o}; "
                "spine segments are 0600: refusing it"
            )
        if st.st_size < _seqlock.HEADER_SIZE:
            raise ShmLayoutError(
                f"shared-memory segment {name!r} is truncated: {st.st_size} bytes, smaller than a "
                f"{_seqlock.HEADER_SIZE}-byte header"
            )
        return mmap.mmap(shm.fd, st.st_size, flags=_MAP_FLAGS)
    finally:
        shm.close_fd()


def unlink_segment(name: str) -> None:
    """Remove segment `name` from /dev/shm; a segment that is already gone is fine."""
    try:
        posix_ipc.unlink_shared_memory(name)
    except posix_ipc.ExistentialError:
        pass


def start_ticks(pid: int) -> int | None:
    """Start time of `pid` in clock ticks since boot (/proc/<pid>/stat field 22); None if it is not running.

    A zombie (killed but not yet reaped) counts as not running.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = text.rpartition(b")")[2].split()
    if len(fields) < 20 or fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def process_alive(pid: int, ticks: int) -> bool:
    """Whether process `pid` runs and, if `ticks` is non-zero, is the same process (not a reused pid)."""
    if pid <= 0:
        return False
    now = start_ticks(pid)
    if now is None:
        return False
    return ticks == 0 or now == ticks
