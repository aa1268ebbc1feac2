"""What the scenarios of ``spine bench shm`` share: frame sizes, figures, pacing, taking a frame."""

from __future__ import annotations

import resource
import time

import numpy as np

from spine.bench.pacing import Pacer
from spine.bench.procs import RoleProcess
from spine.bench.stamps import stamp_ok
from spine.bench.stats import summary
from spine.errors import BenchError, ShmFrameOverwritten
from spine.shm import WaveformReader

SIZES = {"4kb": 4096, "1mb": 1 << 20, "4.8mb": 4_800_000}
POINTS = (("p50", 50.0), ("p99", 99.0), ("p99_9", 99.9))


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    """n, p50, p99, p99.9, max and mean (µs) of nanosecond samples."""
    return summary(samples_ns, POINTS, scale=1e-3)


def page_faults() -> int:
    """Page faults (minor and major) this process has taken so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_minflt + usage.ru_majflt


# time.sleep alone overshoots by ~100 µs: sleep to 150 µs before each deadline, then spin
PACER = Pacer(spin_ns=150_000)


# closed loops (hand-off, zmq ipc, descriptor): each frame is sent once the reader has finished
# the previous one and had GAP_NS to go back to sleep, so no frame ever queues behind another
GAP_NS = 300_000

Taken = tuple[int, int, bool, int]  # frame index, frames skipped, stamp check passed, monotonic ns when held


def take_copy(reader: WaveformReader, out: np.ndarray, spin: bool, predict: bool = False,
              timeout: float = 10.0) -> Taken | None:
    """Copy the next frame into ``out`` (polling once with ``spin``, else waiting): what was taken, or None."""
    frame = reader.read_next(out) if spin else reader.wait_next(timeout=timeout, out=out, predict=predict)
    held = time.monotonic_ns()  # the copy is validated: the reader holds the frame (as the zmq receiver's clock)
    if frame is None:
        return None
    return frame.frame_index, frame.skipped, stamp_ok(out, frame.frame_index), held


def take_in_place(reader: WaveformReader, full_read: bool, predict: bool = False,
                  timeout: float = 10.0) -> Taken | None:
    """Check the next frame through a zero-copy view validated after use: what was taken, or None."""
    view = reader.wait_view(timeout=timeout, predict=predict)
    if view is None:
        return None
    try:
        with view:
            words = np.frombuffer(view.data, dtype=np.uint64)
            if full_read:
                words.sum()  # every word of the frame read where it lies
            ok = stamp_ok(words, view.frame_index)
            del words  # no reference into the segment may outlive the view
    except ShmFrameOverwritten:
        ok = False  # cannot happen in this closed loop; counted as torn if it ever does
    return view.frame_index, view.skipped, ok, time.monotonic_ns()  # in place, held once validated after use


def acked(ack, role: RoleProcess, timeout_s: float = 10.0) -> None:
    """Wait for the reader ``role`` to acknowledge a frame (BenchError, with the role's own if it failed)."""
    if not ack.wait(timeout_s):
        if role.has_result():
            role.result(0)  # raises the role's error if it failed
        raise BenchError(f"{role.name} process stopped acknowledging frames (none for {timeout_s:g} s)",
                         reason=BenchError.NO_RESULT, role=role.name, timeout=timeout_s)
    ack.clear()


def copy_buffers(size: int) -> tuple[np.ndarray, np.ndarray]:
    """A source and a destination of `size` bytes for the memcpy baseline, both touched already."""
    src = np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8)
    return src, np.ones_like(src)


def timed_copyto(dst: np.ndarray, src: np.ndarray) -> int:
    """Nanoseconds of one np.copyto(dst, src), right after an untimed one (as in a back-to-back loop)."""
    np.copyto(dst, src)
    t0 = time.monotonic_ns()
    np.copyto(dst, src)
    return time.monotonic_ns() - t0
