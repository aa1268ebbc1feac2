"""The control-plane roles: a 1 kHz controller and the responder it asks, through the broker."""

from __future__ import annotations

import time

import numpy as np

from spine.bench.harness.baselines import RawEcho
from spine.bench.harness.config import CONTROLLER, DEADLINE_NS, RESPONDER, LoopConfig, Wiring
from spine.bench.pacing import Pacer, next_slot, set_timer_slack
from spine.bench.procs import LIVE_CONTROL, LIVE_CONTROL_MISSES, RoleLink
from spine.client.component import Message
from spine.errors import RequestTimeout
from spine.protocol import neural_spike_pb2 as pb
from spine.protocol.envelope import new_spike
from spine.protocol.framing import Kind


def controller_role(link: RoleLink, cfg: LoopConfig, wiring: Wiring) -> dict:
    """Send one control request per slot at ``cfg.control_hz``, one outstanding, via ``Component.request``.

    With an echo server in ``wiring``, blocks of ``cfg.echo_block_s`` take
    turns: the first block's requests go through the bus, the next block's
    to the raw echo, and so on, so both paths are measured at the same rate
    under the same load, drifting machine and all.  Returns per sent request
    its slot, whether it took the raw path, the actual send time and the
    reply time (or timeout); latency is taken from the slot's due time.
    """
    set_timer_slack()
    pacer = Pacer(cfg.spin_us * 1000)
    n, period = cfg.control_slots, cfg.control_period_ns
    block = max(1, round(cfg.echo_block_s * cfg.control_hz))
    slots, sent, replied = (np.zeros(n, dtype=np.int64) for _ in range(3))
    lost, raw = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    comp = wiring.component(CONTROLLER)
    echo = None
    count = 0
    try:
        if wiring.echo_endpoint is not None:
            assert wiring.echo_key is not None
            echo = RawEcho(wiring.echo_endpoint, wiring.echo_key, cfg.request_timeout_s)
        start_ns = link.ready()
        slot = 0
        while slot < n:
            due = start_ns + slot * period
            on_raw = echo is not None and (slot // block) % 2 == 1
            sent[count] = pacer.sleep_until(due)
            if on_raw:
                lost[count] = not echo.round_trip(slot)
            else:
                request = new_spike(command_req=pb.CommandRequest(command="step", task_id=str(slot)))
                try:
                    comp.request(RESPONDER, request, timeout=cfg.request_timeout_s)
                except RequestTimeout:
                    lost[count] = True
            replied[count] = time.monotonic_ns()
            slots[count], raw[count] = slot, on_raw
            count += 1
            latency = int(replied[count - 1] - due)
            link.live[LIVE_CONTROL] = count
            if latency > DEADLINE_NS and not on_raw:
                link.live[LIVE_CONTROL_MISSES] += 1
            slot = next_slot(slot, latency, period)
    finally:
        comp.close()
        if echo is not None:
            echo.close()
    return {"start_ns": start_ns, "slots": slots[:count], "raw": raw[:count], "sent": sent[:count],
            "replied": replied[:count], "lost": lost[:count]}


def responder_role(link: RoleLink, cfg: LoopConfig, wiring: Wiring) -> dict:
    """Answer every control request at once until the coordinator says stop."""
    comp = wiring.component(RESPONDER)
    served = 0

    def answer(msg: Message) -> pb.NeuralSpike | None:
        nonlocal served
        if msg.kind is not Kind.REQUEST:
            return None
        served += 1
        return new_spike(command_resp=pb.CommandResponse(task_id=msg.spike.command_req.task_id))

    try:
        link.ready()
        comp.serve(answer, should_stop=link.stop.is_set, poll_s=0.05)
        dropped = dict(comp.counters.dropped)
    finally:
        comp.close()
    return {"served": served, "dropped": dropped}
