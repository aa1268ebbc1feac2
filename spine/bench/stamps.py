"""Frames the benchmarks write and check: each carries its frame index, so a torn read shows.

The writer stamps the index into one 64-bit word every STAMP_STRIDE bytes and
into the last word; a reader that got a frame the seqlock calls consistent but
whose stamps disagree has seen a torn frame.
"""

from __future__ import annotations

import numpy as np

STAMP_STRIDE = 8192  # one stamp word every 8 KiB (and the last word)


def stamp(buf: np.ndarray, frame_index: int) -> None:
    """Write ``frame_index`` into the stamp words of ``buf`` (uint8, length a multiple of 8)."""
    words = buf.view(np.uint64)
    words[:: STAMP_STRIDE // 8] = frame_index
    words[-1] = frame_index


def stamp_ok(data, frame_index: int) -> bool:
    """Whether every stamp word of ``data`` (any buffer) holds ``frame_index``."""
    words = np.frombuffer(data, dtype=np.uint64)
    return bool(np.all(words[:: STAMP_STRIDE // 8] == frame_index) and words[-1] == frame_index)
