"""``spine bench clock_offset``: how many control messages survive a clock offset between hosts.

A sender stamps its envelopes as a host whose clock runs ahead of the receivers' by OFFSET
would (``timestamp`` = now + OFFSET, in Unix ms as on the wire) and sends each one, class
CONTROL, through a real broker to two receivers: one with the single-clock limit alone
(50 µs into the future, what every receiver applied before the cross-host allowance), one
with the allowance now in force (``CoherenceLimits.from_env()``: 1 ms unless
``SPINE_CLOCK_OFFSET_US`` says otherwise). The figure is the share each receiver dropped as
"from the future". Nothing here is a timing: the baseline is the other receiver.
"""

from __future__ import annotations

import time

from spine.bench.common import BenchBus, parser, table, write_json
from spine.client.component import Component, Plane
from spine.errors import BenchError
from spine.protocol.envelope import new_spike
from spine.protocol.framing import MsgClass
from spine.resilience.coherence import (CoherenceChecker, CoherenceLimits, DropReason,
                                        MessageClass)

OFFSETS_MS = (0.0, 0.1, 0.5, 0.9, 1.0, 2.0, 5.0)


def _drain(receiver: Component, sent: int, deadline: float) -> None:
    """Receive until ``receiver`` has accepted or dropped ``sent`` control messages."""
    checker = receiver.coherence
    while checker.accepted(MessageClass.CONTROL) + checker.dropped(MessageClass.CONTROL) < sent:
        if time.monotonic() > deadline:
            raise BenchError(f"{receiver.name} saw only part of the {sent} messages in time")
        receiver.recv(timeout=0.05)


def run(count: int) -> list[dict]:
    """Send ``count`` messages per offset; return each offset's drop shares (in %)."""
    names = ("sender", "single-clock", "cross-host")
    results = []
    with BenchBus(names) as bus:
        limits = {"single-clock": CoherenceLimits(host_offset_ns=0),
                  "cross-host": CoherenceLimits.from_env()}
        comps = {name: Component(name, keys_dir=bus.keys_dir, endpoints=bus.broker.ipc,
                                 broker_key=bus.broker.public_key, heartbeat=False,
                                 coherence=CoherenceChecker(limits.get(name))).connect()
                 for name in names}
        try:
            sent = 0
            for offset_ms in OFFSETS_MS:
                before = {n: comps[n].coherence.dropped(MessageClass.CONTROL, DropReason.FUTURE)
                          for n in limits}
                for _ in range(count):  # one at a time: each is judged one hop after its send
                    sent += 1
                    for receiver in limits:
                        spike = new_spike(text_data="tick")
                        spike.timestamp = (time.time_ns() + round(offset_ms * 1e6)) // 1_000_000
                        comps["sender"].send(receiver, spike, plane=Plane.CONTROL,
                                             msg_class=MsgClass.CONTROL)
                        _drain(comps[receiver], sent, time.monotonic() + 30)
                row = {"offset_ms": offset_ms}
                for receiver in limits:
                    future = comps[receiver].coherence.dropped(MessageClass.CONTROL,
                                                               DropReason.FUTURE)
                    row[receiver] = 100.0 * (future - before[receiver]) / count
                results.append(row)
        finally:
            for comp in comps.values():
                comp.close()
        results.append({"allowance_us": limits["cross-host"].future_ns(True) / 1000})
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the measurement and print the drop shares per offset."""
    p = parser("clock_offset", __doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=400, help="messages per offset (default 400)")
    args = p.parse_args(argv)
    results = run(args.count)
    allowance = results.pop()["allowance_us"]
    print(f"control messages dropped as 'future' (%), {args.count} per offset; cross-host "
          f"allowance {allowance:g} µs")
    print(table([(r["offset_ms"], r["single-clock"], r["cross-host"]) for r in results],
                ("offset ms", "single clock (50 µs)", "cross-host")))
    write_json(args.json, {"count": args.count, "allowance_us": allowance, "rows": results})
    return 0
