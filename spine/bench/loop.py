"""The 1 kHz latency harness: tick jitter, control round trip, shm hand-off and descriptor latency.

Run: spine bench loop [--duration S] [--json FILE] [--plot FILE.png] [--pin ROLE=CPUS ...]

Separate processes, CURVE on: a broker, a physics-like writer ticking at
1 kHz on absolute deadlines (frame into the shm ring, descriptor on the data
plane), an in-place shm reader, a descriptor follower, and a controller
sending control requests at 1 kHz through the broker to a responder.  Same-run
baselines: a bare timer loop and a raw pyzmq CURVE echo.  Latencies are
counted from the scheduled time (coordinated omission corrected) into HDR
histograms.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from spine.bench.harness import LoopConfig, run_loop
from spine.bench.harness.config import ROLES, RT_PRIORITIES, parse_cpus
from spine.errors import ConfigError, HarnessError
from spine.fsutil import atomic_write


class TerminalProgress:
    """One status line, rewritten in place: phase, elapsed time and the live counters."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._phase: str | None = None

    def __call__(self, phase: str, elapsed_s: float, total_s: float, live: dict[str, int]) -> None:
        """Show ``phase`` at ``elapsed_s`` of ``total_s`` with the live counts."""
        if self._phase is not None and phase != self._phase:
            self.stream.write("\n")
        self._phase = phase
        done = min(1.0, elapsed_s / total_s) if total_s else 1.0
        bar = "#" * int(done * 20)
        if phase == "system":
            detail = (f"ticks {live['ticks']} (late {live['tick_misses']})  control {live['control']} "
                      f"(over 1 ms {live['control_misses']})")
        else:
            detail = f"samples {live['baseline']}"
        self.stream.write(f"\r{phase:<18} [{bar:<20}] {elapsed_s:6.1f}/{total_s:g} s  {detail}   ")
        self.stream.flush()

    def finish(self) -> None:
        """End the status line (once)."""
        if self._phase is not None:
            self.stream.write("\n")
            self.stream.flush()
            self._phase = None


def _role_setting(text: str, what: str, parse):
    """ROLE=VALUE from the command line as (role, parse(VALUE)); argparse's error if either is wrong."""
    role, sep, value = text.partition("=")
    if not sep or role not in ROLES:
        raise argparse.ArgumentTypeError(f"expected ROLE={what} with ROLE one of {', '.join(ROLES)}, got {text!r}")
    try:
        return role, parse(value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _pin(text: str) -> tuple[str, tuple[int, ...]]:
    return _role_setting(text, "CPUS", parse_cpus)


def _fifo_priority(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"priority must be an integer 1-99, got {text!r}") from None


def _priority(text: str) -> tuple[str, int]:
    return _role_setting(text, "PRIO", _fifo_priority)


def _stall(text: str) -> tuple[float, float]:
    at, sep, length = text.partition(":")
    try:
        return float(at), float(length) / 1000 if sep else 0.1
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected AT_S[:MS], e.g. 5:80, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``spine bench loop``."""
    p = argparse.ArgumentParser(prog="spine bench loop", description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=10.0, help="seconds of the system phase (default 10)")
    p.add_argument("--baseline", type=float, default=None,
                   help="seconds of each baseline (default: the duration, at most 10)")
    p.add_argument("--no-baselines", action="store_true", help="skip the timer-loop and raw-echo baselines")
    p.add_argument("--tick-rate", type=int, default=1000, help="writer ticks per second (default 1000)")
    p.add_argument("--control-rate", type=int, default=1000, help="control requests per second (default 1000)")
    p.add_argument("--frame-size", type=int, default=1 << 20, help="bytes per shm frame (default 1048576)")
    p.add_argument("--slots", type=int, default=16, help="slots in the shm ring (default 16)")
    p.add_argument("--read", choices=("view", "copy"), default="view",
                   help="shm reader works in place on a validated view (default) or copies each frame")
    p.add_argument("--predict", action="store_true",
                   help="shm reader uses the predictive wait (sleep until shortly before the frame is due, "
                        "then poll) instead of sleeping on the futex for every frame")
    p.add_argument("--echo-block", type=float, default=1.0, metavar="S",
                   help="in the system phase the controller takes turns between the bus and a raw echo in blocks "
                        "of S seconds (the same-load baseline; default 1)")
    p.add_argument("--transport", choices=("ipc", "tcp"), default="ipc", help="broker transport (default ipc)")
    p.add_argument("--spin-us", type=int, default=100,
                   help="spin this long before each deadline instead of sleeping (default 100)")
    p.add_argument("--pin", type=_pin, action="append", default=[], metavar="ROLE=CPUS",
                   help=f"run ROLE on CPUS (e.g. writer=1, broker=0); roles: {', '.join(ROLES)}")
    p.add_argument("--rt", action="store_true",
                   help="run the physics and control roles and their baselines under SCHED_FIFO, as a "
                        "real-time deployment would (" + ", ".join(f"{r} {p}" for r, p in RT_PRIORITIES.items())
                        + "; needs root or CAP_SYS_NICE)")
    p.add_argument("--rt-priority", type=_priority, action="append", default=[], metavar="ROLE=PRIO",
                   help="SCHED_FIFO priority 1-99 for ROLE (adds to or overrides --rt)")
    p.add_argument("--pm-qos", action="store_true",
                   help="hold /dev/cpu_dma_latency at 0 during the run (needs root): idle CPUs poll instead of "
                        "halting, as under tuned's latency-performance profile")
    p.add_argument("--broker-config", metavar="FILE",
                   help="TOML file for the broker's [broker] table (e.g. spin_us = 0)")
    p.add_argument("--stall-responder", type=_stall, metavar="AT_S[:MS]",
                   help="SIGSTOP the responder AT_S seconds in for MS milliseconds (default 100)")
    p.add_argument("--json", metavar="FILE", help="write the figures as JSON to FILE")
    p.add_argument("--plot", metavar="FILE.png", help="draw distributions, percentile curves and a timeline")
    progress = p.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="show progress (default: when stdout is a terminal)")
    progress.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the harness, print the summary table, optionally write --json and --plot."""
    args = build_parser().parse_args(argv)
    try:
        config = LoopConfig(duration_s=args.duration, tick_hz=args.tick_rate, control_hz=args.control_rate,
                            frame_bytes=args.frame_size, slots=args.slots, transport=args.transport,
                            read_mode=args.read, predict=args.predict, baseline_s=args.baseline,
                            baselines=not args.no_baselines,
                            spin_us=args.spin_us, responder_stall=args.stall_responder, pin=dict(args.pin),
                            broker_config=args.broker_config,
                            rt={**(RT_PRIORITIES if args.rt else {}), **dict(args.rt_priority)},
                            pm_qos=args.pm_qos, echo_block_s=args.echo_block)
    except ConfigError as exc:
        print(f"spine bench loop: {exc}", file=sys.stderr)
        return 2
    show = sys.stdout.isatty() if args.progress is None else args.progress
    progress = TerminalProgress(sys.stdout) if show else None
    try:
        result = run_loop(config, progress)
    except HarnessError as exc:
        if progress is not None:
            progress.finish()
        print(f"spine bench loop: {exc}", file=sys.stderr)
        return 2
    finally:
        if progress is not None:
            progress.finish()
    print(result.table())
    if args.json:
        atomic_write(args.json, (json.dumps(result.to_json(), indent=2) + "\n").encode())
        print(f"figures written to {args.json}")
    if args.plot:
        from spine.bench.harness.plot import write_plot
        print(f"plot written to {write_plot(result, args.plot)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
