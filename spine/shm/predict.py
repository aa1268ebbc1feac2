"""When to start polling for the next frame of a periodic stream: a pure predictor fed arrival times.

A reader sleeping on the futex pays the wake-up of an idle CPU (tens of µs on
a VM); a reader polling the slot counter holds the frame within a few µs but
burns a core.  A physics stream is periodic, so a reader can learn the period
from when its frames arrived, sleep until shortly before the next one is due,
then poll for a bounded window.  `FramePredictor` is that decision, fed
(frame index, monotonic ns when the reader found it) and asked for the window;
the reader (`WaveformReader.wait_next(..., predict=True)`) does the sleeping
and polling.
"""

from __future__ import annotations

from collections import deque

from spine.errors import ShmError

# frames of history the period and phase are estimated from
HISTORY = 16
# waited-for frames needed before predicting
MIN_SAMPLES = 4
# defaults: start polling this long before a frame is due, and poll at most this long
LEAD_NS = 200_000
WINDOW_NS = 350_000
# waited-for frames in a row off their prediction by over half a period that restart the learning
OFF_LIMIT = 3


class FramePredictor:
    """Learns a stream's period and phase from arrival times; says when to poll for a given frame.

    Only frames the reader had to wait for are informative (a frame already
    there when the reader looked tells nothing about when it was committed),
    so the reader feeds only those.  The phase is the lower envelope of the
    recent arrivals projected onto the newest frame, so arrivals delayed by a
    slow wake-up do not push the prediction late.  A waited-for frame arriving
    more than half a period away from its prediction is left out (a writer
    running on absolute deadlines catches up after a late tick); OFF_LIMIT
    such frames in a row (the writer paused, was restarted or changed pace)
    restart the learning from the last of them.

    `poll_window` never asks for more than `window_ns` of polling per frame,
    and predicts nothing (the reader sleeps on the futex instead) while the
    period is unknown or shorter than `2 * window_ns`, so polling costs at most
    about window / period of a core.
    """

    def __init__(self, lead_ns: int = LEAD_NS, window_ns: int = WINDOW_NS) -> None:
        if lead_ns < 0 or window_ns <= 0:
            raise ShmError(f"lead ({lead_ns} ns) must be >= 0 and the poll window ({window_ns} ns) > 0")
        self.lead_ns = lead_ns
        self.window_ns = window_ns
        self._seen: deque[tuple[int, int]] = deque(maxlen=HISTORY)
        self._off = 0  # waited-for frames in a row far off their prediction

    def reset(self) -> None:
        """Forget everything learned (e.g. the writer was replaced)."""
        self._seen.clear()
        self._off = 0

    @property
    def period_ns(self) -> int | None:
        """The estimated frame period (oldest to newest remembered frame), None until enough frames seen.

        Over the whole history rather than frame to frame, so one frame's
        wake-up delay moves it by only delay / HISTORY.
        """
        if len(self._seen) < MIN_SAMPLES:
            return None
        (i0, t0), (i1, t1) = self._seen[0], self._seen[-1]
        period = (t1 - t0) // (i1 - i0)
        return period if period > 0 else None

    def due_ns(self, frame_index: int) -> int | None:
        """Monotonic ns at which frame `frame_index` is expected, None while the stream is not learned."""
        period = self.period_ns
        if period is None:
            return None
        last = self._seen[-1][0]
        anchor = min(t + (last - i) * period for i, t in self._seen)
        return anchor + (frame_index - last) * period

    def observe(self, frame_index: int, seen_ns: int) -> None:
        """Record that the reader, having waited for it, found frame `frame_index` at `seen_ns` (monotonic)."""
        if self._seen and frame_index <= self._seen[-1][0]:
            self.reset()  # the stream went back: a new writer
        else:
            due = self.due_ns(frame_index)
            period = self.period_ns
            if due is not None and period is not None and abs(seen_ns - due) > period // 2:
                self._off += 1
                if self._off < OFF_LIMIT:
                    return
                self.reset()
            else:
                self._off = 0
        self._seen.append((frame_index, seen_ns))

    def poll_window(self, frame_index: int, now_ns: int) -> tuple[int, int] | None:
        """(start, end) monotonic ns to poll for frame `frame_index`, or None to sleep on the futex.

        `start` is `lead_ns` before the frame is due (it may be in the past:
        poll at once), `end` is `start + window_ns`.  None while the stream is
        not learned, when its period is under twice the window, or when the
        window has already passed (the frame is late: sleep until it comes).
        """
        due = self.due_ns(frame_index)
        period = self.period_ns
        if due is None or period is None or period < 2 * self.window_ns:
            return None
        start = due - self.lead_ns
        end = start + self.window_ns
        if now_ns >= end:
            return None
        return start, end
