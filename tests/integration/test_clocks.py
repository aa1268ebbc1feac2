"""Envelopes from a host whose clock runs ahead: accepted within the allowance, through a real broker."""

from __future__ import annotations

import time

from spine.client.component import Plane
from spine.protocol.envelope import new_spike
from spine.protocol.framing import MsgClass
from spine.resilience.coherence import DropReason, MessageClass


def _ahead(offset_ms: float):
    spike = new_spike(text_data=f"{offset_ms} ms ahead")
    spike.timestamp = (time.time_ns() + round(offset_ms * 1e6)) // 1_000_000
    return spike


def test_a_control_message_from_a_clock_ahead_by_less_than_the_allowance_is_kept(bus):
    sender, receiver = bus.component("sender", heartbeat=False), bus.component("receiver",
                                                                               heartbeat=False)
    sender.send("receiver", _ahead(0.9), plane=Plane.CONTROL, msg_class=MsgClass.CONTROL)
    msg = receiver.recv(timeout=5)
    assert msg is not None and msg.spike.text_data == "0.9 ms ahead"

    sender.send("receiver", _ahead(50.0), plane=Plane.CONTROL, msg_class=MsgClass.CONTROL)
    sender.send("receiver", new_spike(text_data="now"), plane=Plane.CONTROL,
                msg_class=MsgClass.CONTROL)
    msg = receiver.recv(timeout=5)
    assert msg is not None and msg.spike.text_data == "now"  # 50 ms ahead: dropped, counted
    assert receiver.coherence.dropped(MessageClass.CONTROL, DropReason.FUTURE) == 1
