"""The harness's in-place check of a frame by its index, through a validated zero-copy view.

Frames are stamped with their index (``spine.bench.stamps``), so a torn read shows.
"""

from __future__ import annotations

import time

from spine.bench.stamps import stamp_ok
from spine.errors import ShmError, ShmFrameOverwritten
from spine.shm import _seqlock
from spine.shm.predict import FramePredictor
from spine.shm.reader import FrameView, WaveformReader, poll_for_frame


class InPlaceChecker:
    """Checks frames of a writer's ring in place, through a validated zero-copy view.

    The harness checks every frame by its index: "sleep on the futex until frame i
    exists, then view frame i". ``WaveformReader.wait_view`` waits for whatever frame
    comes next instead, so this class drives the same extension calls the reader
    uses, on the reader's mapping.
    """

    def __init__(self, reader: WaveformReader, predictor: FramePredictor | None = None) -> None:
        self.reader = reader
        self._map = reader._map
        self.predictor = predictor

    def wait(self, index: int, timeout_s: float) -> bool:
        """Wait until frame ``index`` is committed; False on timeout.

        Sleeps on the futex; with a ``predictor``, once it has learned the
        stream, sleeps only until shortly before the frame is due and polls
        for it (``poll_for_frame``), then falls back to the futex.
        """
        if _seqlock.frame_count(self._map) > index:
            return True
        deadline = time.monotonic_ns() + int(timeout_s * 1e9)
        if self.predictor is not None and poll_for_frame(self._map, index, self.predictor, deadline):
            self.predictor.observe(index, time.monotonic_ns())
            return True
        left = deadline - time.monotonic_ns()
        if left <= 0 or _seqlock.wait(self._map, index, left) is None:
            return False
        if self.predictor is not None:
            self.predictor.observe(index, time.monotonic_ns())
        return True

    def check(self, index: int, sequence_num: int | None = None) -> tuple[str, int]:
        """Check frame ``index`` in place: (outcome, monotonic ns when it was held consistent or given up).

        outcome is "ok" (consistent and correctly stamped), "torn" (the
        seqlock said consistent but the stamps disagree) or "overwritten"
        (the writer reused the slot before or while it was checked, or its
        sequence number is not ``sequence_num``: detected, not torn).
        ShmError if the frame has not been written yet.
        """
        info = _seqlock.peek(self._map, index)
        if info[0] == _seqlock.NOT_YET:
            raise ShmError(f"frame {index} of {self.reader.name!r} has not been written yet")
        if info[0] != _seqlock.OK or (sequence_num is not None and info[3] != sequence_num):
            return "overwritten", time.monotonic_ns()
        try:
            with FrameView(self.reader, info) as view:  # leaving the block validates the view
                good = stamp_ok(view.data, index)
        except ShmFrameOverwritten:
            return "overwritten", time.monotonic_ns()
        return ("ok" if good else "torn"), time.monotonic_ns()
