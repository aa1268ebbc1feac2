"""``spine ping``: control-plane round trips to the broker, reported the way ping(8) does.

Each probe is the ``ping`` admin command on the control plane: the broker answers it from
its own loop, so the round trip covers the client's socket, the CURVE transport, the
broker's control-first loop and back. A probe without an answer within its timeout is
counted as lost; an answer arriving later is not counted.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from spine.client.status import connect_from_args
from spine.errors import RequestTimeout

PROBE_TIMEOUT_S = 1.0


@dataclass
class PingStats:
    """Probes sent and the round trips (milliseconds) of those answered."""

    transmitted: int = 0
    rtts_ms: list[float] = field(default_factory=list)

    @property
    def received(self) -> int:
        """Probes answered in time."""
        return len(self.rtts_ms)

    @property
    def loss_percent(self) -> float:
        """Share of probes lost, 0 when none was sent."""
        if not self.transmitted:
            return 0.0
        return 100.0 * (self.transmitted - self.received) / self.transmitted

    def summary(self, elapsed_s: float) -> list[str]:
        """The closing lines of ping(8): counts and loss, then min/avg/max/mdev."""
        lines = [f"{self.transmitted} transmitted, {self.received} received, "
                 f"{self.loss_percent:.0f}% loss, time {elapsed_s * 1000:.0f} ms"]
        if self.rtts_ms:
            n = len(self.rtts_ms)
            avg = sum(self.rtts_ms) / n
            # ping(8)'s mdev: the standard deviation sqrt(E[x^2] - E[x]^2)
            mdev = math.sqrt(max(0.0, sum(x * x for x in self.rtts_ms) / n - avg * avg))
            lines.append(f"rtt min/avg/max/mdev = {min(self.rtts_ms):.3f}/{avg:.3f}/"
                         f"{max(self.rtts_ms):.3f}/{mdev:.3f} ms")
        return lines


def ping_broker(args: argparse.Namespace, out: TextIO | None = None) -> PingStats:
    """Probe the broker ``args.count`` times (forever when None) every ``args.interval`` s.

    Prints one line per probe and the summary; Ctrl-C ends the run early, summary included.
    """
    out = out if out is not None else sys.stdout
    count: int | None = getattr(args, "count", None)
    interval: float = getattr(args, "interval", None) or 1.0
    timeout = max(PROBE_TIMEOUT_S, interval)
    stats = PingStats()
    comp = connect_from_args(args)
    target = comp.endpoints.control
    print(f"PING broker at {target} as {comp.name}", file=out, flush=True)
    started = time.monotonic()
    try:
        seq = 0
        while count is None or seq < count:
            seq += 1
            sent_at = time.perf_counter()
            stats.transmitted += 1
            try:
                comp.request_broker("ping", timeout=timeout)
            except RequestTimeout:
                print(f"no answer from the broker: seq={seq} (timeout {timeout:g} s)",
                      file=out, flush=True)
            else:
                rtt_ms = (time.perf_counter() - sent_at) * 1000
                stats.rtts_ms.append(rtt_ms)
                print(f"answer from broker: seq={seq} time={rtt_ms:.3f} ms", file=out, flush=True)
            if count is not None and seq >= count:
                break
            # pacing between probes, as ping(8) does; nothing to wait on but the clock
            time.sleep(max(0.0, sent_at + interval - time.perf_counter()))
    except KeyboardInterrupt:
        pass
    finally:
        comp.close()
    elapsed = time.monotonic() - started
    print("\n--- broker ping statistics ---", file=out)
    for line in stats.summary(elapsed):
        print(line, file=out)
    return stats


def run_ping(args: argparse.Namespace) -> int:
    """``spine ping [-c COUNT] [-i INTERVAL] [--name NAME] [--keys-dir D] [--runtime-dir D]
    [--tcp HOST:PORT]``: 0 when at least one probe was answered, 1 when none was."""
    stats = ping_broker(args)
    return 0 if stats.received else 1
