"""The waveform channel: a seqlock ring of frames in POSIX shared memory (SPEC §7).

One writer (`WaveformWriter`) commits frames and never waits; readers
(`WaveformReader`) copy consistent frames out, view them in place, follow the
stream, or sleep on a futex until the next frame
(`FramePredictor`: the predictive wait for periodic streams).  `descriptors` turns writes
into WaveformSHM messages and reads the frames they point at; `bus` sends those
descriptors over the broker's data plane (`DescriptorPublisher`) and follows
them in reader components (`DescriptorFollower`).
"""

from spine.shm.bus import (DescriptorFollower, DescriptorPublisher, FollowedFrame, FollowedView,
                           OverwrittenFrame)
from spine.shm.descriptors import descriptor_for, read_descriptor, view_descriptor
from spine.shm.predict import FramePredictor
from spine.shm.rate import DescriptorRate
from spine.shm.reader import Frame, FrameView, WaveformReader
from spine.shm.writer import WaveformWriter, WrittenFrame

__all__ = [
    "DescriptorFollower",
    "DescriptorPublisher",
    "DescriptorRate",
    "FollowedFrame",
    "FollowedView",
    "Frame",
    "FramePredictor",
    "FrameView",
    "OverwrittenFrame",
    "WaveformReader",
    "WaveformWriter",
    "WrittenFrame",
    "descriptor_for",
    "read_descriptor",
    "view_descriptor",
]
