"""Hand-off latency, closed loop: writer commit → a reader process holds a checked frame, four ways, and memcpy."""

from __future__ import annotations

import os
import time
import uuid

import numpy as np

from spine.bench.procs import FORK, RoleLink, RoleProcess
from spine.bench.shm.common import (GAP_NS, PACER, acked, copy_buffers, page_faults, percentiles, take_copy,
                                    take_in_place, timed_copyto)
from spine.bench.stamps import stamp
from spine.shm import WaveformReader, WaveformWriter

MODES = ("copy", "copy_spinning", "inplace", "inplace_full_read")


def _shm_reader(link: RoleLink, name: str, size: int, frames: int, modes: tuple[str, ...], ack) -> dict:
    out = np.ones(size, dtype=np.uint8)  # touched now, not on the first frame
    done: list[tuple[int, int, bool]] = []
    skipped = 0
    with WaveformReader(name) as reader:
        faults = page_faults()
        link.ready()
        while len(done) + skipped < frames:
            mode = modes[(len(done) + skipped) % len(modes)]  # the closed loop never skips
            if mode in ("copy", "copy_spinning"):
                got = take_copy(reader, out, spin=mode == "copy_spinning")
                if got is None and mode == "copy_spinning":
                    continue
            else:
                got = take_in_place(reader, full_read=mode == "inplace_full_read")
            if got is None:
                break
            index, missed, ok, t = got
            skipped += missed
            done.append((index, t, ok))
            ack.set()
        faults = page_faults() - faults
    return {"done": done, "skipped": skipped, "faults": faults}


def shm_handoffs(size: int, frames: int, modes: tuple[str, ...] = MODES) -> tuple[dict[str, dict], dict]:
    """Hand-off latency percentiles (µs) per mode: writer commit → reader process holds a checked frame.

    The commit time is WrittenFrame.committed_ns, read just before the
    commit's stores, ahead of the futex wake-up (write() returns later: the
    wake-up syscall, and sometimes the woken reader itself, run first).

    Modes take turns frame by frame (`frames` each), so a change in background
    load hits all of them alike.  "copy": the reader sleeps in wait_next and
    copies the frame out; "copy_spinning": it polls read_next without
    sleeping; "inplace": it sleeps in wait_view, then checks the frame's stamp
    words through the zero-copy view, validated after use; "inplace_full_read":
    the same, reading every word of the frame.  Under "memcpy", the memcpy
    baseline taken in the same loop: after each frame the writer times an
    np.copyto of the same size (right after an untimed one, as back to back),
    so the baseline meets the same background load as the hand-offs.  Also
    returns the page faults both processes took meanwhile.
    """
    name = f"/spine-bench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    ack = FORK.Event()
    payload = np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8)
    copy_src, copy_dst = copy_buffers(size)
    copies: list[int] = []
    total = frames * len(modes)
    commits: dict[int, int] = {}
    returns: dict[int, int] = {}
    starts: dict[int, int] = {}
    with WaveformWriter(name, size, 8) as writer, \
            RoleProcess("shm reader", _shm_reader, (name, size, total, modes, ack)) as reader:
        writer_faults = page_faults()
        for i in range(total):
            stamp(payload, i)
            PACER.sleep_until(time.monotonic_ns() + GAP_NS)
            starts[i] = time.monotonic_ns()
            commits[i] = writer.write(payload).committed_ns
            returns[i] = time.monotonic_ns()
            acked(ack, reader)
            copies.append(timed_copyto(copy_dst, copy_src))  # the baseline, under the same load
        writer_faults = page_faults() - writer_faults
        report = reader.result(30)
    done, skipped, reader_faults = report["done"], report["skipped"], report["faults"]
    results = {}
    for k, mode in enumerate(modes):
        mine = [(f, t, ok) for f, t, ok in done if f % len(modes) == k]
        warm = [(f, t) for f, t, _ in mine if f >= 10 * len(modes)]
        result = percentiles([t - commits[f] for f, t in warm])
        result["from_write_returned"] = percentiles([t - returns[f] for f, t in warm])  # the older, laxer start
        result["write_plus_handoff"] = percentiles([t - starts[f] for f, t in warm])
        # the writer's write(): its copy into the slot, the commit, and the futex wake of a sleeping reader
        result["write"] = percentiles([returns[f] - starts[f] for f, _ in warm])
        # commit → write() returned: waking the reader (FUTEX_WAKE), and any preemption by the woken reader
        result["commit_to_return"] = percentiles([returns[f] - commits[f] for f, _ in warm])
        result["torn"] = sum(not ok for _, _, ok in mine)
        results[mode] = result
    results["memcpy"] = percentiles(copies[10 * len(modes):])
    return results, {"frames": total, "skipped": skipped, "reader": reader_faults, "writer": writer_faults}


def memcpy_latency(size: int, reps: int) -> dict:
    """np.copyto of `size` bytes back to back, percentiles (µs)."""
    src, dst = copy_buffers(size)
    samples = []
    for _ in range(reps):
        t0 = time.monotonic_ns()
        np.copyto(dst, src)
        samples.append(time.monotonic_ns() - t0)
    return percentiles(samples)
