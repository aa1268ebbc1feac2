"""``spine bench rtt``: a control round trip through the broker vs a raw pyzmq echo.

Both with CURVE, between separate processes, in the same run: the client here sends a
request through the broker to a responder process and waits for the reply; the baseline
sends the same frames to a plain pyzmq ROUTER echo process. The two take turns in blocks
of 250 round trips. ``ratios`` = broker / raw.
"""

from __future__ import annotations

import time

import zmq

from spine.bench import roles
from spine.bench.common import BenchBus, curve_pair, parser, table, write_json
from spine.bench.procs import SPAWN, RoleProcess
from spine.bench.stats import summary
from spine.client.component import Component, Plane
from spine.protocol.envelope import new_spike, request_id_bytes
from spine.protocol.framing import Kind, pack_header
from spine.sockets import tune


def measure_broker_with(client: Component, count: int, warmup: int) -> list[float]:
    """Control round trips from ``client`` to the "responder" component, in µs."""
    samples = []
    for i in range(warmup + count):
        spike = new_spike(text_data="ping")
        t0 = time.perf_counter_ns()
        client.request("responder", spike, timeout=5, plane=Plane.CONTROL)
        if i >= warmup:
            samples.append((time.perf_counter_ns() - t0) / 1e3)
    return samples


def raw_round_trip(sock: zmq.Socket, frames: list[bytes]) -> float:
    """One round trip to the raw echo server, in µs."""
    t0 = time.perf_counter_ns()
    sock.send_multipart(frames)
    sock.recv_multipart()
    return (time.perf_counter_ns() - t0) / 1e3


def run(count: int = 5000, warmup: int = 500, broker_args: list[str] | None = None,
        block: int = 250) -> dict:
    """Measure both paths in alternating blocks of ``block`` round trips (so that a change
    in the machine's load hits both alike); return the figures with ``ratios`` (broker / raw)."""
    with BenchBus(["client", "responder"], extra_args=broker_args) as bus:
        eps = bus.broker.ipc
        public, secret = curve_pair()
        cpub, csec = curve_pair()
        endpoint = f"ipc://{bus.root}/raw-echo.ipc"
        spike = new_spike(text_data="ping")
        frames = [pack_header(Kind.REQUEST, "responder", request_id_bytes(spike)),
                  spike.SerializeToString()]
        with RoleProcess("raw-echo", roles.raw_echo, (endpoint, public, secret), context=SPAWN), \
                RoleProcess("responder", roles.responder, (str(bus.keys_dir), eps, "responder", bus.broker.public_key),
                            context=SPAWN), \
                Component("client", keys_dir=bus.keys_dir, endpoints=eps,
                          broker_key=bus.broker.public_key) as client:
            ctx = zmq.Context()
            sock = tune(ctx.socket(zmq.DEALER))
            sock.curve_secretkey, sock.curve_publickey, sock.curve_serverkey = csec, cpub, public
            sock.connect(endpoint)
            raw_samples: list[float] = []
            broker_samples: list[float] = []
            try:
                for _ in range(warmup):
                    raw_round_trip(sock, frames)
                measure_broker_with(client, 0, warmup)
                while len(raw_samples) < count:
                    n = min(block, count - len(raw_samples))
                    raw_samples += [raw_round_trip(sock, frames) for _ in range(n)]
                    broker_samples += measure_broker_with(client, n, 0)
            finally:
                sock.close(0)
                ctx.term()
    raw, broker = summary(raw_samples), summary(broker_samples)
    return {"benchmark": "rtt", "count": count, "block": block, "raw_us": raw, "broker_us": broker,
            "ratios": {"p50": broker["p50"] / raw["p50"], "p99": broker["p99"] / raw["p99"]}}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = parser("rtt", __doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=5000)
    p.add_argument("--broker-config", metavar="FILE",
                   help="TOML file for the broker's [broker] table (e.g. spin_us = 250)")
    args = p.parse_args(argv)
    figures = run(args.count, broker_args=["--config", args.broker_config] if args.broker_config else None)
    rows = [(name, f["p50"], f["p90"], f["p99"], f["p99_9"], f["max"])
            for name, f in (("raw pyzmq echo", figures["raw_us"]), ("through broker", figures["broker_us"]))]
    print(table(rows, ("round trip (µs)", "p50", "p90", "p99", "p99.9", "max")))
    print(f"ratios broker/raw: p50 {figures['ratios']['p50']:.2f}  p99 {figures['ratios']['p99']:.2f}"
          "  (target p50 <= 2.2)")
    write_json(args.json, figures)
    return 0
