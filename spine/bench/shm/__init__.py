"""Benchmark of the waveform channel: shm hand-off vs memcpy vs zmq ipc, 1 kHz sustained, sparse encoding.

Run: spine bench shm [--json FILE] [--frames N] [--sustain SECONDS] [--periodic SECONDS] [--pm-qos] [--rt]

One module per scenario (handoff, zmq_ipc, descriptor, sustained, periodic,
sparse_encoding), what they share in ``common``, the command line in ``run``.

- hand-off latency, writer commit (WrittenFrame.committed_ns) → a reader
  process sleeping in the futex holds a consistent frame, for 4 KB, 1 MB and 4.8 MB frames, two ways:
  * in place: the reader takes a zero-copy view of the frame in the segment,
    reads the words it checks (one every 8 KiB, and the last), and the view is
    validated (seqlock re-check) after that use; also with every word read;
  * copy: the reader copies the frame into its own array (wait_next(out=...));
  against np.copyto of the same size (timed in the same loop after each
  frame, and back to back before it) and against the same frame sent over a
  zmq PUSH/PULL ipc:// pair (receiver holds the bytes), all in this run;
- 4.8 MB frames written at 1 kHz for a few seconds with one reader following;
- a periodic 1 MB stream at 1 kHz read by a reader sleeping on the futex and,
  separately, by one using the predictive wait (predict=True), with the
  reader's CPU use: `ratios.vs_zmq_ipc_1mb_predictive` and
  `ratios.memcpy_1mb_predictive` are reported beside the headline, not in its place;
- sparse encoding of a 10 M-node complex128 grid at ~1 % density against one
  np.abs pass over the same grid.

`ratios.vs_zmq_ipc_1mb` is zmq / in-place hand-off (frames read in place, as
the channel is meant to be used); `ratios.vs_zmq_ipc_1mb_copy` is zmq / copying
hand-off; `ratios.memcpy_1mb` is copying hand-off / memcpy.  The JSON says so
under `ratio_definitions`.  Every frame read is checked (frame number stamped
through the payload); `torn` counts frames that failed the check and must be 0.
With --pm-qos the run holds /dev/cpu_dma_latency at 0 µs (root only), which
keeps idle CPUs from halting and shows what the futex wake-up costs without
that (see docs/waveform.md); with --rt every process of the run is SCHED_FIFO.
Together they are how a real-time host runs the physics path.
"""

from spine.bench.shm.common import SIZES
from spine.bench.shm.run import HANDOFF_KEYS, RATIO_DEFINITIONS, main

__all__ = ["HANDOFF_KEYS", "RATIO_DEFINITIONS", "SIZES", "main"]
