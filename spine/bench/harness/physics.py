"""The physics-side roles: the 1 kHz writer, the in-place shm reader and the descriptor follower.

Every role returns raw per-frame timestamps (CLOCK_MONOTONIC ns, one clock for
all processes on a host); the coordinator turns them into latencies.
"""

from __future__ import annotations

import time

import numpy as np

from spine.bench.harness.config import DEADLINE_NS, FOLLOWER, WRITER, LoopConfig, Wiring
from spine.bench.harness.frames import InPlaceChecker
from spine.bench.pacing import Pacer, set_timer_slack
from spine.bench.procs import LIVE_TICK_MISSES, LIVE_TICKS, RoleLink
from spine.bench.stamps import stamp, stamp_ok
from spine.errors import SendFailed, ShmFrameOverwritten, ShmWriterGone
from spine.protocol.envelope import new_spike
from spine.protocol.framing import MsgClass
from spine.shm import WaveformReader, WaveformWriter, descriptor_for, read_descriptor
from spine.shm.predict import FramePredictor

# readers give up this long after the last frame was due
GRACE_S = 2.0


def writer_role(link: RoleLink, cfg: LoopConfig, wiring: Wiring) -> dict:
    """Tick at ``cfg.tick_hz`` on absolute deadlines: write a stamped frame, publish its descriptor.

    Late ticks are run back to back until the loop is on time again (a
    physics engine cannot skip steps), each measured from its own due time.
    """
    set_timer_slack()
    pacer = Pacer(cfg.spin_us * 1000)
    n, period = cfg.ticks, cfg.tick_period_ns
    started, committed, ended = (np.zeros(n, dtype=np.int64) for _ in range(3))
    payload = np.random.default_rng(0).integers(0, 256, cfg.frame_bytes, dtype=np.uint8)
    send_failed = 0
    comp = wiring.component(WRITER)
    try:
        with WaveformWriter(wiring.segment, slot_size=cfg.frame_bytes, slot_count=cfg.slots) as writer:
            start_ns = link.ready()
            for k in range(n):
                due = start_ns + k * period
                started[k] = pacer.sleep_until(due)
                stamp(payload, k)
                written = writer.write(payload)
                committed[k] = written.committed_ns  # taken at the commit, before the futex wake-up
                try:
                    comp.send(FOLLOWER, new_spike(waveform_shm=descriptor_for(writer, written)),
                              msg_class=MsgClass.PHYSICS)
                except SendFailed:
                    send_failed += 1
                ended[k] = time.monotonic_ns()
                link.live[LIVE_TICKS] = k + 1
                if ended[k] - due > DEADLINE_NS:
                    link.live[LIVE_TICK_MISSES] += 1
    finally:
        comp.close()
    return {"start_ns": start_ns, "started": started, "committed": committed, "ended": ended,
            "send_failed": send_failed}


def reader_role(link: RoleLink, cfg: LoopConfig, wiring: Wiring) -> dict:
    """Follow every frame; note when each is held consistent (in place or copied).

    With ``cfg.predict`` the reader sleeps until shortly before each frame is
    due and then polls for it (the predictive wait); otherwise it sleeps on
    the futex until the frame is committed.
    """
    n = cfg.ticks
    held = np.full(n, -1, dtype=np.int64)
    counts = {"torn": 0, "overwritten": 0}
    with WaveformReader(wiring.segment) as reader:
        start_ns = link.ready()
        deadline = start_ns + n * cfg.tick_period_ns + int(GRACE_S * 1e9)
        if cfg.read_mode == "view":
            predictor = FramePredictor() if cfg.predict else None
            _follow_in_place(InPlaceChecker(reader, predictor), n, deadline, held, counts)
        else:
            _follow_copying(reader, cfg.frame_bytes, n, deadline, held, counts, cfg.predict)
    return {"held": held, **counts}


def _follow_in_place(checker: InPlaceChecker, n: int, deadline: int, held: np.ndarray,
                     counts: dict[str, int]) -> None:
    index = 0
    while index < n and time.monotonic_ns() < deadline:
        if not checker.wait(index, 0.05):
            continue
        outcome, now = checker.check(index)
        if outcome == "ok":
            held[index] = now
        else:
            counts[outcome] += 1
        index += 1


def _follow_copying(reader: WaveformReader, size: int, n: int, deadline: int, held: np.ndarray,
                    counts: dict[str, int], predict: bool) -> None:
    out = np.ones(size, dtype=np.uint8)  # touched now, not on the first frame
    while time.monotonic_ns() < deadline:
        try:
            frame = reader.wait_next(timeout=0.05, out=out, predict=predict)
        except ShmWriterGone:  # the writer finished; the frames still missing were overwritten
            return
        if frame is None:
            continue
        now = time.monotonic_ns()
        counts["overwritten"] += frame.skipped
        if frame.frame_index >= n:
            break
        if stamp_ok(frame.data, frame.frame_index):
            held[frame.frame_index] = now
        else:
            counts["torn"] += 1
        if frame.frame_index == n - 1:
            break


def follower_role(link: RoleLink, cfg: LoopConfig, wiring: Wiring) -> dict:
    """Receive every WaveformSHM descriptor on the data plane, then check the frame it points at.

    Records when each descriptor arrived; the frame is checked in place or
    copied out with ``read_descriptor`` (``cfg.read_mode``), and one already
    overwritten on arrival, or torn, is counted.
    """
    n = cfg.ticks
    received = np.full(n, -1, dtype=np.int64)
    counts = {"ok": 0, "torn": 0, "overwritten": 0, "unexpected": 0}
    out = np.ones(cfg.frame_bytes, dtype=np.uint8) if cfg.read_mode == "copy" else None
    comp = wiring.component(FOLLOWER)
    try:
        with WaveformReader(wiring.segment) as reader:
            checker = InPlaceChecker(reader) if out is None else None
            start_ns = link.ready()
            deadline = start_ns + n * cfg.tick_period_ns + int(GRACE_S * 1e9)
            got = 0
            while got < n and time.monotonic_ns() < deadline:
                msg = comp.recv(timeout=0.05)
                if msg is None:
                    continue
                now = time.monotonic_ns()
                if msg.sender != WRITER or not msg.spike.HasField("waveform_shm"):
                    counts["unexpected"] += 1
                    continue
                desc = msg.spike.waveform_shm
                if not 0 <= desc.frame_index < n:
                    counts["unexpected"] += 1
                    continue
                received[desc.frame_index] = now
                got += 1
                counts[_check_described(reader, checker, desc, out)] += 1
    finally:
        comp.close()
    return {"received": received, **counts}


def _check_described(reader: WaveformReader, checker: InPlaceChecker | None, desc, out) -> str:
    """Check the frame a descriptor names, in place (``checker``) or copied into ``out``: ok/torn/overwritten."""
    if checker is not None:
        if desc.segment_id != reader.segment_id:
            return "unexpected"
        return checker.check(desc.frame_index, desc.sequence_num)[0]
    try:
        frame = read_descriptor(reader, desc, out)
    except ShmFrameOverwritten:
        return "overwritten"
    return "ok" if stamp_ok(frame.data, desc.frame_index) else "torn"
