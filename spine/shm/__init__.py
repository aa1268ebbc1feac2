"""The waveform channel: a seqlock ring of frames in POSIX shared memory (SPEC §7).

One writer (`WaveformWriter`) commits frames and never waits; readers
(`WaveformReader`) copy consistent frames out, follow the stream, or sleep on
a futex until the next frame.  `descriptors` turns writes into WaveformSHM
messages for the data plane and reads the frames they point at.
"""

from spine.shm.descriptors import descriptor_for, read_descriptor
from spine.shm.reader import Frame, FrameView, WaveformReader
from spine.shm.writer import WaveformWriter, WrittenFrame

__all__ = [
    "Frame",
    "FrameView",
    "WaveformReader",
    "WaveformWriter",
    "WrittenFrame",
    "descriptor_for",
    "read_descriptor",
]
