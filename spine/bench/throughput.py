"""``spine bench throughput``: data-plane messages per second through the broker vs ``zmq.proxy``.

Producer → broker → consumer against producer → zmq.proxy (libzmq's C proxy, ROUTER to
DEALER) → consumer: three processes each time, ipc, CURVE on every socket, the same
producer and consumer code and the same two-frame messages (routing header + NeuralSpike),
for 64-byte and 1 MB payloads. ``ratios.small`` and ``ratios.large`` = broker / proxy.
"""

from __future__ import annotations

from spine.bench import roles
from spine.bench.common import BenchBus, curve_pair, parser, table, write_json
from spine.bench.procs import SPAWN, RoleProcess
from spine.errors import BenchError

SIZES = {"small": 64, "large": 1 << 20}
DEFAULT_COUNTS = {"small": 100_000, "large": 2_000}


def _rate(producer_args: tuple, consumer_args: tuple, count: int, timeout: float = 120.0) -> float:
    with RoleProcess("consumer", roles.consumer, (*consumer_args, count, timeout), context=SPAWN) as consumer, \
            RoleProcess("producer", roles.producer, (*producer_args, count), context=SPAWN):
        got = consumer.result(timeout + 30)
    received = got["got"]
    if received < count:
        raise BenchError(f"consumer got {received} of {count} messages within {timeout} s",
                         reason=BenchError.INCOMPLETE, role="consumer", timeout=timeout)
    return (count - 1) / (got["last"] - got["first"])


def measure_broker(bus: BenchBus, size: int, count: int) -> float:
    """Messages per second producer → broker → consumer."""
    eps, key = bus.broker.ipc, bus.broker.public_key
    prod = bus.keys("producer")
    return _rate((eps.data, (prod.public, prod.secret, key), b"producer", "consumer", size),
                 (eps.data, (b"", b"", key), ("consumer", str(bus.keys_dir), eps)), count)


def measure_proxy(bus: BenchBus, size: int, count: int) -> float:
    """Messages per second producer → zmq.proxy → consumer."""
    public, secret = curve_pair()
    front, back = f"ipc://{bus.root}/proxy-front.ipc", f"ipc://{bus.root}/proxy-back.ipc"
    cpub, csec = curve_pair()
    with RoleProcess("proxy", roles.proxy, (front, back, public, secret), context=SPAWN):
        return _rate((front, (cpub, csec, public), b"producer", "consumer", size),
                     (back, (cpub, csec, public), None), count)


def run(counts: dict[str, int] | None = None) -> dict:
    """Measure both paths for both sizes; return figures with ``ratios``."""
    counts = counts or DEFAULT_COUNTS
    figures: dict = {"benchmark": "throughput", "msgs_per_s": {}, "ratios": {}}
    with BenchBus(["producer", "consumer"]) as bus:
        for label, size in SIZES.items():
            proxy = measure_proxy(bus, size, counts[label])
            broker = measure_broker(bus, size, counts[label])
            figures["msgs_per_s"][label] = {"payload_bytes": size, "count": counts[label],
                                            "proxy": proxy, "broker": broker}
            figures["ratios"][label] = broker / proxy
    return figures


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = parser("throughput", __doc__.splitlines()[0])
    p.add_argument("--small-count", type=int, default=DEFAULT_COUNTS["small"])
    p.add_argument("--large-count", type=int, default=DEFAULT_COUNTS["large"])
    args = p.parse_args(argv)
    f = run({"small": args.small_count, "large": args.large_count})
    rows = [(f"{d['payload_bytes']:,} B", d["proxy"], d["broker"], f["ratios"][label])
            for label, d in f["msgs_per_s"].items()]
    print(table(rows, ("payload", "zmq.proxy msg/s", "broker msg/s", "broker/proxy")))
    print("targets: >= 0.5 for 64 B, >= 0.9 for 1 MB")
    write_json(args.json, f)
    return 0
