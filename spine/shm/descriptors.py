"""WaveformSHM descriptors: the small message that tells readers a frame is ready in shared memory.

The frame itself never crosses a socket; the descriptor names the segment
(and its instance, `segment_id`), the frame, its slot and the seqlock counter
the slot had once the frame was whole.  A reader that gets the descriptor too
late finds the counter moved and reports the frame as overwritten.
"""

from __future__ import annotations

from spine.errors import ProtocolError, ShmError, ShmFrameOverwritten
from spine.protocol import neural_spike_pb2 as pb
from spine.shm.reader import Frame, FrameView, WaveformReader
from spine.shm.segment import normalize_name
from spine.shm.writer import WaveformWriter, WrittenFrame


def descriptor_for(writer: WaveformWriter, written: WrittenFrame) -> pb.WaveformSHM:
    """The WaveformSHM describing frame `written` of `writer`'s segment."""
    return pb.WaveformSHM(
        segment_id=writer.segment_id,
        data_size=written.data_size,
        sequence_num=written.sequence_num,
        timestamp_ns=written.timestamp_ns,
        segment_name=writer.name,
        slot_index=written.slot_index,
        frame_index=written.frame_index,
    )


def _check(reader: WaveformReader, desc: pb.WaveformSHM) -> None:
    if normalize_name(desc.segment_name or reader.name) != reader.name:
        raise ShmError(f"descriptor is for segment {desc.segment_name!r}, this reader has {reader.name!r} open")
    if desc.segment_id != reader.segment_id:
        raise ShmError(
            f"descriptor is for instance {desc.segment_id:#x} of {reader.name!r}, this reader has "
            f"{reader.segment_id:#x}: the segment was recreated, open it again"
        )
    if desc.data_size > reader.slot_size:
        raise ProtocolError(f"descriptor claims {desc.data_size} bytes, slots of {reader.name!r} hold {reader.slot_size}")
    if desc.slot_index != desc.frame_index % reader.slot_count:
        raise ProtocolError(
            f"descriptor puts frame {desc.frame_index} in slot {desc.slot_index}; the ring of "
            f"{reader.slot_count} slots keeps it in slot {desc.frame_index % reader.slot_count}"
        )


def _rewritten(reader: WaveformReader, desc: pb.WaveformSHM, sequence_num: int) -> ShmFrameOverwritten:
    return ShmFrameOverwritten(
        f"frame {desc.frame_index} of {reader.name!r} was rewritten since the descriptor was sent "
        f"(sequence {sequence_num}, descriptor says {desc.sequence_num})"
    )


def read_descriptor(reader: WaveformReader, desc: pb.WaveformSHM, out=None) -> Frame:
    """Copy the frame `desc` points at (into `out` if given).

    Raises ShmFrameOverwritten if that frame is no longer in its slot,
    ProtocolError if the descriptor contradicts the segment's geometry, and
    ShmError if it names another segment or another instance of it (the
    writer recreated the segment: open a new reader).
    """
    _check(reader, desc)
    frame = reader.read_frame(desc.frame_index, out)
    if frame.sequence_num != desc.sequence_num:
        raise _rewritten(reader, desc, frame.sequence_num)
    return frame


def view_descriptor(reader: WaveformReader, desc: pb.WaveformSHM) -> FrameView:
    """A zero-copy view of the frame `desc` points at, validated when its `with` block ends.

    Raises as read_descriptor does; ShmFrameOverwritten also comes from the
    end of the `with` block if the writer reached the slot while it was used.
    """
    _check(reader, desc)
    view = reader.view_frame(desc.frame_index)
    if view.sequence_num != desc.sequence_num:
        view.data.release()
        raise _rewritten(reader, desc, view.sequence_num)
    return view
