"""``spine bench priority``: control round trips with the data plane idle, then flooded.

A responder process answers control requests through the broker. Then a flooder process
sends data as fast as it can to a sink process that reads only ``--sink-rate`` messages a
second (both SCHED_IDLE, the lowest CPU priority, as bulk work should be), so the broker forwards
data all the time while at least 10,000 data messages wait in the queues, and the same
control round trips are measured again. ``ratios`` = flooded / idle; a single FIFO would
make the flooded figure seconds (10,000 messages at the sink's rate).
"""

from __future__ import annotations

import time

from spine.bench import roles
from spine.bench.common import BenchBus, parser, table, write_json
from spine.bench.procs import SPAWN, RoleProcess
from spine.bench.rtt import measure_broker_with
from spine.bench.stats import summary
from spine.client.component import Component
from spine.errors import BenchError

QUEUE_TARGET = 10_000


def run(count: int = 5000, size: int = 64, sink_rate: float = 20_000, broker_args: list[str] | None = None) -> dict:
    """Measure idle and flooded control round trips; return figures with ``ratios``."""
    with BenchBus(["client", "responder", "flooder", "sink"], extra_args=broker_args) as bus:
        eps, key = bus.broker.ipc, bus.broker.public_key
        with RoleProcess("responder", roles.responder, (str(bus.keys_dir), eps, "responder", key),
                         context=SPAWN), \
                Component("client", keys_dir=bus.keys_dir, endpoints=eps, broker_key=key) as client:
            idle = measure_broker_with(client, count, warmup=300)
            sent, received = SPAWN.Value("q", 0), SPAWN.Value("q", 0)
            with RoleProcess("sink", roles.sink, (str(bus.keys_dir), eps, "sink", key, received, sink_rate),
                             nice=19, context=SPAWN), \
                    RoleProcess("flooder", roles.flooder,
                                (str(bus.keys_dir), eps, "flooder", key, "sink", size, sent), nice=19, context=SPAWN):
                deadline = time.monotonic() + 30
                while sent.value - received.value < QUEUE_TARGET and time.monotonic() < deadline:
                    time.sleep(0.01)  # waiting for the flood to build up; nothing to wait on
                backlog_before = sent.value - received.value
                if backlog_before < QUEUE_TARGET:
                    raise BenchError(f"the data backlog reached only {backlog_before} of {QUEUE_TARGET} "
                                     "messages within 30 s", reason=BenchError.INCOMPLETE, timeout=30)
                start = received.value
                flooded = measure_broker_with(client, count, warmup=0)
                backlog_after = sent.value - received.value
                forwarded = received.value - start
    idle_p, flooded_p = summary(idle), summary(flooded)
    return {"benchmark": "priority", "count": count, "payload_bytes": size, "sink_rate": sink_rate,
            "idle_us": idle_p, "flooded_us": flooded_p,
            "backlog": {"before": backlog_before, "after": backlog_after,
                        "data_messages_forwarded": forwarded},
            "ratios": {"p50": flooded_p["p50"] / idle_p["p50"], "p99": flooded_p["p99"] / idle_p["p99"]}}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = parser("priority", __doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=5000)
    p.add_argument("--size", type=int, default=64, help="data payload bytes of the flood")
    p.add_argument("--sink-rate", type=float, default=20_000,
                   help="data messages per second the sink reads (the flood is faster)")
    p.add_argument("--broker-config", metavar="FILE",
                   help="TOML file for the broker's [broker] table (e.g. spin_us = 250)")
    args = p.parse_args(argv)
    f = run(args.count, args.size, args.sink_rate,
            broker_args=["--config", args.broker_config] if args.broker_config else None)
    rows = [(name, d["p50"], d["p90"], d["p99"], d["p99_9"], d["max"])
            for name, d in (("data plane idle", f["idle_us"]), ("data plane flooded", f["flooded_us"]))]
    print(table(rows, ("control round trip (µs)", "p50", "p90", "p99", "p99.9", "max")))
    b = f["backlog"]
    print(f"data backlog while measuring: {b['before']:,} → {b['after']:,} messages "
          f"({b['data_messages_forwarded']:,} forwarded meanwhile)")
    print(f"ratios flooded/idle: p50 {f['ratios']['p50']:.2f}  p99 {f['ratios']['p99']:.2f}  (target <= 1.5)")
    write_json(args.json, f)
    return 0
