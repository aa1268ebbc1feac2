"""A periodic 1 kHz stream read by a reader sleeping on the futex or using the predictive wait, with its CPU use."""

from __future__ import annotations

import os
import time
import uuid

import numpy as np

from spine.bench.procs import RoleLink, RoleProcess
from spine.bench.shm.common import PACER, percentiles, take_copy, take_in_place
from spine.bench.stamps import stamp
from spine.shm import FramePredictor, WaveformReader, WaveformWriter

PERIODIC_MODES = ("inplace", "copy")
PERIODIC_WARMUP = 50  # frames the predictor learns from before hand-offs count


def _periodic_reader(link: RoleLink, name: str, size: int, frames: int, predictor: FramePredictor | None) -> dict:
    out = np.ones(size, dtype=np.uint8)  # touched now, not on the first frame
    predict = predictor is not None
    done: list[tuple[int, int, bool]] = []
    skipped = 0
    with WaveformReader(name) as reader:
        if predictor is not None:
            reader.predictor = predictor
        link.ready()
        cpu0, wall0 = time.process_time_ns(), time.monotonic_ns()
        while len(done) + skipped < frames:
            mode = PERIODIC_MODES[(len(done) + skipped) % len(PERIODIC_MODES)]
            if mode == "copy":
                got = take_copy(reader, out, spin=False, predict=predict, timeout=2.0)
            else:
                got = take_in_place(reader, full_read=False, predict=predict, timeout=2.0)
            if got is None:
                break
            index, missed, ok, t = got
            skipped += missed
            done.append((index, t, ok))
        cpu, wall = time.process_time_ns() - cpu0, time.monotonic_ns() - wall0
    return {"done": done, "skipped": skipped, "cpu_share": cpu / wall}


def periodic_handoffs(size: int, rate_hz: int, frames: int, predictor: FramePredictor | None) -> dict:
    """A writer at `rate_hz` and a reader process following every frame, sleeping on the futex or predicting.

    Hand-off = writer commit (WrittenFrame.committed_ns) → the reader holds a
    checked frame, per mode taking turns frame by frame: "inplace" (validated
    zero-copy view of the stamp words) and "copy" (wait_next into the reader's
    array).  With a `predictor` the reader uses wait_view/wait_next(predict=True)
    with it: it sleeps until shortly before the frame is due, then polls the
    counter; without one it sleeps on the futex.
    Also reports the reader's CPU use (process CPU time / wall time, % of one core).
    """
    name = f"/spine-bench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    payload = np.random.default_rng(6).integers(0, 256, size, dtype=np.uint8)
    period = 1_000_000_000 // rate_hz
    commits: dict[int, int] = {}
    with WaveformWriter(name, size, 16) as writer, \
            RoleProcess("periodic reader", _periodic_reader, (name, size, frames, predictor)) as reader:
        next_at = time.monotonic_ns()
        for i in range(frames):
            PACER.sleep_until(next_at)
            stamp(payload, i)
            commits[i] = writer.write(payload).committed_ns
            next_at += period
        report = reader.result(30)
    done, skipped, cpu_share = report["done"], report["skipped"], report["cpu_share"]
    result: dict = {"predict": predictor is not None, "rate_hz": rate_hz, "frames": frames, "skipped": skipped,
                    "reader_cpu_percent_of_one_core": 100.0 * cpu_share}
    if predictor is not None:
        result.update(lead_us=predictor.lead_ns / 1e3, window_us=predictor.window_ns / 1e3)
    for k, mode in enumerate(PERIODIC_MODES):
        mine = [(f, t, ok) for f, t, ok in done if f % len(PERIODIC_MODES) == k]
        warm = [t - commits[f] for f, t, _ in mine if f >= PERIODIC_WARMUP]
        result[mode] = percentiles(warm)
        result[mode]["torn"] = sum(not ok for _, _, ok in mine)
        result[mode]["over_113us"] = sum(d > 113_000 for d in warm)
    return result
