"""The reading side of the waveform channel: copy consistent frames out of a writer's ring."""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import TracebackType
from typing import Callable, TypeVar

import numpy as np

from spine.errors import ShmError, ShmFrameOverwritten, ShmWriterGone
from spine.shm import _seqlock
from spine.shm.predict import FramePredictor
from spine.shm.segment import Geometry, check_layout, normalize_name, open_segment, process_alive

T = TypeVar("T")

# read_latest gives up after this many laps of the writer round the ring
_LATEST_ATTEMPTS = 64
_NEXT_ATTEMPTS = 64
# wait_next checks that the writer lives after sleeping this long (seconds) without a frame
LIVENESS_INTERVAL = 0.25


@dataclass(frozen=True)
class Frame:
    """One consistent frame: `data` holds exactly its `data_size` bytes (a view of the destination buffer).

    `skipped` counts the frames `read_next`/`wait_next` passed over because
    the writer overwrote them before this reader got to them.
    """

    frame_index: int
    slot_index: int
    sequence_num: int
    data_size: int
    timestamp_ns: int
    data: memoryview
    skipped: int = 0


class FrameView:
    """A zero-copy, read-only view of a frame inside the segment, checked after use.

    The frame is read in place: nothing is copied, and whatever is read from
    `data` is consistent if and only if `valid()` is still True afterwards.

    Use as a context manager: leaving the block releases the view and raises
    ShmFrameOverwritten if the writer touched the slot meanwhile, in which case
    whatever was computed from `data` must be thrown away.  Do not keep
    references to `data` (or arrays made from it) past the block.
    """

    def __init__(self, reader: WaveformReader, info: tuple[int, int, int, int, int, int], skipped: int = 0) -> None:
        _, self.frame_index, self.slot_index, self.sequence_num, self.data_size, self.timestamp_ns = info
        self.skipped = skipped  # frames view_next/wait_view passed over, as in Frame.skipped
        self._reader = reader
        start, end = reader.geometry.payload_range(self.slot_index, self.data_size)
        self.data: memoryview = memoryview(reader._map)[start:end].toreadonly()

    def valid(self) -> bool:
        """Whether the slot still holds this frame, so everything read from `data` so far is consistent."""
        return _seqlock.check(self._reader._map, self.slot_index, self.sequence_num)

    def __enter__(self) -> FrameView:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        ok = self.valid()
        self.data.release()
        if not ok and exc_type is None:
            raise ShmFrameOverwritten(
                f"frame {self.frame_index} was overwritten while it was being used in place: discard the result"
            )


class WaveformReader:
    """Reader of a writer's named ring; never blocks the writer and never returns a torn frame.

    Opening checks the segment's owner, mode and layout (ShmLayoutError says
    what is wrong).  `read_next` and `wait_next` follow the stream from the
    frames committed after opening; `read_latest` jumps to the newest.

    A reader asleep in a wait is woken when a write begins and, if the
    writer runs on another CPU, polls for that write's commit for about as
    long as the previous write took (at most `follow_us`, 500 µs by
    default): the time a sleeping CPU needs to wake up then overlaps the
    write, and the frame is held microseconds after its commit.  That costs
    the reader about one write's duration of CPU per frame; `follow_us=0`
    sleeps until the commit instead.
    """

    def __init__(self, name: str, follow_us: float = _seqlock.FOLLOW_NS / 1000) -> None:
        if not 0 <= follow_us <= 1_000_000:
            raise ShmError(f"follow_us must be between 0 and 1,000,000 µs, not {follow_us!r}")
        self.follow_ns = int(follow_us * 1000)
        self.name = normalize_name(name)
        self._map = open_segment(self.name)
        try:
            check_layout(self.name, self._map)
            count, size, self.segment_id, self.created_ns, *_ = _seqlock.header(self._map)
            self.geometry = Geometry.of(count, size)
        except BaseException:
            self._map.close()
            raise
        self._next = _seqlock.frame_count(self._map)
        self.predictor = FramePredictor()

    @property
    def slot_size(self) -> int:
        """Largest frame, in bytes, of this segment."""
        return self.geometry.slot_size

    @property
    def slot_count(self) -> int:
        """Slots in the writer's ring."""
        return self.geometry.slot_count

    @property
    def writer_pid(self) -> int:
        """Pid of the process holding the writer role (0: none)."""
        return _seqlock.header(self._map)[4]

    @property
    def generation(self) -> int:
        """Writer generation: it grows when a restarted writer takes the segment over."""
        return _seqlock.header(self._map)[6]

    @property
    def frame_count(self) -> int:
        """Frames committed to this segment so far."""
        return _seqlock.frame_count(self._map)

    def writer_alive(self) -> bool:
        """Whether the writer process still runs (False after it closed, crashed or was killed)."""
        _, _, _, _, pid, ticks, _, _ = _seqlock.header(self._map)
        return process_alive(pid, ticks)

    def _dest(self, out) -> memoryview:
        if out is None:
            return memoryview(np.empty(self.geometry.slot_size, dtype=np.uint8))
        try:
            view = memoryview(out)
        except TypeError:
            raise ShmError(f"cannot read into a {type(out).__name__}: pass a writable buffer or numpy array") from None
        if view.readonly or not view.c_contiguous:
            raise ShmError("the destination must be a writable, C-contiguous buffer")
        return view.cast("B") if view.format != "B" or view.ndim != 1 else view

    def _frame(self, info: tuple[int, int, int, int, int, int], dest: memoryview, skipped: int = 0) -> Frame:
        _, frame, slot, seq, size, ts = info
        return Frame(frame, slot, seq, size, ts, dest[:size], skipped)

    def _too_small(self, dest: memoryview, need: int) -> ShmError:
        return ShmError(f"destination of {dest.nbytes} bytes is smaller than the {need}-byte frame")

    def _lapped(self, attempts: int) -> ShmError:
        return ShmError(f"the writer of {self.name!r} lapped this reader {attempts} times in a row: "
                        "give it more slots")

    def read_frame(self, frame_index: int, out=None) -> Frame:
        """Copy frame `frame_index` (into `out` if given).

        Raises ShmFrameOverwritten if the writer has overwritten it (or died
        while overwriting it), ShmError if it has not been written yet.
        """
        dest = self._dest(out)
        info = _seqlock.read_frame(self._map, dest, frame_index)
        status = info[0]
        if status == _seqlock.OK:
            return self._frame(info, dest)
        if status == _seqlock.OVERWRITTEN:
            raise ShmFrameOverwritten(
                f"frame {frame_index} of {self.name!r} has been overwritten by a newer frame: "
                "read sooner or give the writer more slots"
            )
        if status == _seqlock.BUFFER_SMALL:
            raise self._too_small(dest, info[4])
        raise ShmError(f"frame {frame_index} of {self.name!r} has not been written yet")

    def read_latest(self, out=None) -> Frame | None:
        """Copy the newest frame (into `out` if given); None if nothing has been written yet."""
        dest = self._dest(out)
        info = _seqlock.read_latest(self._map, dest, _LATEST_ATTEMPTS)
        status = info[0]
        if status == _seqlock.OK:
            return self._frame(info, dest)
        if status == _seqlock.EMPTY:
            return None
        if status == _seqlock.BUFFER_SMALL:
            raise self._too_small(dest, info[4])
        raise self._lapped(_LATEST_ATTEMPTS)

    def read_next(self, out=None) -> Frame | None:
        """Copy the frame after the last one this reader returned; None if there is none yet.

        If the reader lagged so far that frames were overwritten, it resumes
        at the oldest frame still in the ring and `Frame.skipped` says how
        many it missed.
        """
        return self._take_next(self._dest(out), 0)

    def _take_next(self, dest: memoryview | None, timeout_ns: int) -> Frame | FrameView | None:
        """The frame after the last one taken, copied into `dest` (None: a view of it), waiting up to timeout_ns.

        One native call does the catch-up when the reader lagged, the futex
        sleep and the copy, with the GIL released: no Python runs between the
        writer's wake-up and the copy.  None when no frame came in time.
        """
        *info, self._next, skipped = _seqlock.wait_next(self._map, dest, self._next, timeout_ns, _NEXT_ATTEMPTS,
                                                           self.follow_ns)
        status = info[0]
        if status == _seqlock.OK:
            return FrameView(self, info, skipped) if dest is None else self._frame(info, dest, skipped)
        if status == _seqlock.NOT_YET:
            return None
        if status == _seqlock.BUFFER_SMALL:
            raise self._too_small(dest, info[4])
        raise self._lapped(_NEXT_ATTEMPTS)

    def wait_next(self, timeout: float, out=None, predict: bool = False) -> Frame | None:
        """Like read_next, but sleep (on a futex, no polling) up to `timeout` seconds for the frame.

        Returns None on timeout.  Raises ShmWriterGone if the writer is found
        dead: liveness is checked only after sleeping without a frame (at
        most LIVENESS_INTERVAL at a time), never on the way to a frame.

        With `predict=True` (for periodic streams) the reader learns the
        stream's period (`self.predictor`, a FramePredictor) and, once it
        has, sleeps only until shortly before the next frame is due, then
        polls the frame counter for at most `predictor.window_ns`, falling
        back to the futex if the frame has not come: the frame is held a few
        µs after its commit instead of after an idle CPU's wake-up, for about
        window / period of a core.
        """
        if predict:
            return self._wait(timeout, lambda: self.read_next(out), predict)
        return self._wait_next(timeout, self._dest(out))

    def _wait_next(self, timeout: float, dest: memoryview | None) -> Frame | FrameView | None:
        deadline = time.monotonic() + timeout
        while True:
            slice_ns = int(max(0.0, min(deadline - time.monotonic(), LIVENESS_INTERVAL)) * 1e9)
            got = self._take_next(dest, slice_ns)
            if got is not None:
                return got
            if not self.writer_alive():
                raise ShmWriterGone(f"the writer of {self.name!r} is gone (it closed, crashed or was killed)")
            if deadline - time.monotonic() <= 0:
                return None

    def _wait(self, timeout: float, attempt: Callable[[], T | None], predict: bool = False) -> T | None:
        deadline = time.monotonic() + timeout
        waited = False
        while True:
            got = attempt()
            if got is not None:
                if predict and waited:
                    self.predictor.observe(got.frame_index, time.monotonic_ns())
                return got
            waited = True
            if predict and poll_for_frame(self._map, self._next, self.predictor, int(deadline * 1e9)):
                continue
            left = deadline - time.monotonic()
            if left > 0:
                slice_ns = int(min(left, LIVENESS_INTERVAL) * 1e9)
                if _seqlock.wait(self._map, self._next, slice_ns, self.follow_ns) is not None:
                    continue
            if not self.writer_alive():
                raise ShmWriterGone(f"the writer of {self.name!r} is gone (it closed, crashed or was killed)")
            if deadline - time.monotonic() <= 0:
                return None

    def view_frame(self, frame_index: int) -> FrameView:
        """A zero-copy view of frame `frame_index`, validated when its `with` block ends.

        Raises ShmFrameOverwritten if the frame is no longer in its slot (or is
        being overwritten), ShmError if it has not been written yet.
        """
        info = _seqlock.peek(self._map, frame_index)
        status = info[0]
        if status == _seqlock.OK:
            return FrameView(self, info)
        if status == _seqlock.OVERWRITTEN:
            raise ShmFrameOverwritten(
                f"frame {frame_index} of {self.name!r} has been overwritten by a newer frame: "
                "read sooner or give the writer more slots"
            )
        raise ShmError(f"frame {frame_index} of {self.name!r} has not been written yet")

    def view_next(self) -> FrameView | None:
        """Like read_next, without copying: a view of the next frame (None if there is none yet).

        Validate it by leaving its `with` block; `FrameView.skipped` counts the
        frames passed over.  The stream moves on even if the view later turns
        out to have been overwritten.
        """
        return self._take_next(None, 0)

    def wait_view(self, timeout: float, predict: bool = False) -> FrameView | None:
        """Like wait_next, without copying: sleep on the futex up to `timeout` s, then view the next frame.

        `predict=True`: sleep only until shortly before the frame is due, then poll (see wait_next).
        """
        if predict:
            return self._wait(timeout, self.view_next, predict)
        return self._wait_next(timeout, None)

    def view_latest(self) -> FrameView | None:
        """A zero-copy view of the newest frame (None if none yet), validated when its `with` block ends."""
        for _ in range(_LATEST_ATTEMPTS):
            count = _seqlock.frame_count(self._map)
            if count == 0:
                return None
            info = _seqlock.peek(self._map, count - 1)
            if info[0] == _seqlock.OK:
                return FrameView(self, info)
        raise self._lapped(_LATEST_ATTEMPTS)

    def close(self) -> None:
        """Unmap the segment (a reader never unlinks it)."""
        if not self._map.closed:
            self._map.close()

    def __enter__(self) -> WaveformReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def poll_for_frame(segment, frame_index: int, predictor: FramePredictor, deadline_ns: int) -> bool:
    """Wait for frame `frame_index` of `segment` (a reader's mapping) the predictive way; True once it exists.

    Sleeps on the futex until `predictor`'s poll window opens (a frame
    committed earlier wakes it), then reads the frame counter without
    sleeping until the window closes.  Returns False, having spent at most
    the window polling, when the predictor has no window for this frame, the
    window closes first, or `deadline_ns` (monotonic) comes first.
    """
    now = time.monotonic_ns()
    window = predictor.poll_window(frame_index, now)
    if window is None:
        return False
    start, end = window
    end = min(end, deadline_ns)
    if start > now:
        if start >= end:
            return False
        if _seqlock.wait(segment, frame_index, start - now) is not None:
            return True
    # a bounded spin (<= predictor.window_ns) on the counter, holding the GIL as each read is ~0.1 µs
    while time.monotonic_ns() < end:
        if _seqlock.frame_count(segment) > frame_index:
            return True
    return False
