"""``spine bench heartbeat_flood``: control pings while a component floods maximal heartbeats.

A whitelisted process sends heartbeats as large as the control plane admits (a payload of
``control_max_bytes`` less the CURVE overhead, packed with metrics), as fast as the broker takes them,
and reads the broker's answers. Meanwhile this process sends the ``ping`` broker command
on the control plane at a steady pace and times each answer. The same pings without the
flood are the baseline. Figures in ms.
"""

from __future__ import annotations

import json
import time

import zmq

from spine.bench.common import BenchBus, parser, table, write_json
from spine.bench.pacing import Pacer
from spine.bench.procs import SPAWN, RoleLink, RoleProcess
from spine.bench.stats import summary
from spine.broker.config import BrokerConfig
from spine.client.component import Component
from spine.protocol import neural_spike_pb2 as pb
from spine.protocol.envelope import new_spike
from spine.protocol.framing import BROKER, Kind, MsgClass, pack_header
from spine.security.keys import load_or_create
from spine.sockets import curve_client, tune

CURVE_OVERHEAD = 33  # a CURVE MESSAGE adds command name, nonce, MAC and flags; MAXMSGSIZE counts them


def maximal_heartbeat(limit: int) -> bytes:
    """A StatusReport envelope packed with metrics to just under ``limit`` bytes."""
    entry = 21  # one map entry: tag and length, an 8-character key, a double
    spike = new_spike(status=pb.StatusReport(state=pb.StatusReport.READY, pid=1))
    for i in range((limit - spike.ByteSize() - 8) // entry):
        spike.status.metrics[f"m{i:07d}"] = float(i)
    while spike.ByteSize() > limit:
        del spike.status.metrics[next(iter(spike.status.metrics))]
    return spike.SerializeToString()


def _flooder(link: RoleLink, keys_dir: str, endpoint: str, broker_key: bytes, limit: int) -> None:
    payload = maximal_heartbeat(limit)
    keys = load_or_create(keys_dir, "flooder")
    ctx = zmq.Context()
    sock = tune(ctx.socket(zmq.DEALER), hwm=1000)
    header = pack_header(Kind.HEARTBEAT, BROKER, bytes(16), msg_class=MsgClass.CONTROL)
    try:
        sock.setsockopt(zmq.ROUTING_ID, b"flooder/hb")
        curve_client(sock, keys, broker_key)
        sock.connect(endpoint)
        link.ready()
        while not link.stop.is_set():
            try:
                sock.send_multipart([header, payload], zmq.NOBLOCK)
            except zmq.Again:
                sock.poll(1, zmq.POLLOUT)
            while sock.poll(0):
                sock.recv_multipart()
    finally:
        sock.close(linger=0)
        ctx.term()


def ping_ms(comp: Component, count: int, interval_s: float) -> list[float]:
    """``count`` control pings to the broker, one every ``interval_s``; round trips in ms."""
    pacer, interval_ns = Pacer(spin_ns=0), int(interval_s * 1e9)
    samples, next_at = [], time.monotonic_ns()
    for _ in range(count):
        next_at += interval_ns
        t0 = time.perf_counter()
        comp.request_broker("ping", timeout=5)
        samples.append((time.perf_counter() - t0) * 1e3)
        pacer.sleep_until(next_at)
    return samples


def _heartbeats(comp: Component) -> dict:
    status = json.loads(comp.request_broker("status", timeout=5).spike.rich_payload.data)
    return status.get("heartbeats", {})


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print p50/p99/max of the ping with and without the flood."""
    p = parser("heartbeat_flood", __doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=2000, help="pings per phase (default 2000)")
    p.add_argument("--interval-ms", type=float, default=2.0, help="ping pacing (default 2 ms)")
    p.add_argument("--bytes", type=int, default=None,
                   help="heartbeat payload size (default: the largest the control plane admits)")
    args = p.parse_args(argv)
    limit = args.bytes or BrokerConfig().control_max_bytes - CURVE_OVERHEAD
    with BenchBus(["pinger", "flooder"]) as bench:
        with Component("pinger", keys_dir=bench.keys_dir, endpoints=bench.broker.ipc,
                       broker_key=bench.broker.public_key, heartbeat=False) as pinger:
            ping_ms(pinger, 100, args.interval_ms / 1e3)  # warm-up
            quiet = ping_ms(pinger, args.count, args.interval_ms / 1e3)
            before = _heartbeats(pinger)
            with RoleProcess("flooder", _flooder, (str(bench.keys_dir), bench.broker.ipc.control,
                                                   bench.broker.public_key, limit), context=SPAWN):
                t0 = time.monotonic()
                flooded = ping_ms(pinger, args.count, args.interval_ms / 1e3)
                elapsed = time.monotonic() - t0
            after = _heartbeats(pinger)
    handled = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    figures = {"payload_limit_bytes": limit, "quiet_ms": summary(quiet),
               "flooded_ms": summary(flooded), "flood_s": elapsed,
               "heartbeats_during_flood": handled}
    rows = [(name, f["p50"], f["p99"], f["max"], f["n"])
            for name, f in (("quiet", figures["quiet_ms"]), ("flooded", figures["flooded_ms"]))]
    print(table(rows, ("control ping (ms)", "p50", "p99", "max", "n")))
    print(f"maximal heartbeats ({limit} bytes max) handled during the flood: {handled} "
          f"in {elapsed:.1f} s")
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
