"""What a circuit breaker costs per call: in memory, persisted in SQLite, open, and recording failures.

Baseline (same run): calling the bare function. Figures are per call, in microseconds.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from spine.bench.stats import summary
from spine.errors import CircuitOpenError, SendFailed
from spine.resilience.breaker_store import BreakerStore
from spine.resilience.guard import CircuitBreaker


def _noop() -> None:
    return None


def _fail() -> None:
    raise SendFailed("the simulated dependency is down")


def _measure(call: Callable[[], None], iterations: int) -> dict[str, float]:
    samples = []
    clock = time.perf_counter_ns
    for _ in range(iterations):
        start = clock()
        call()
        samples.append(clock() - start)
    figures = summary(samples, (("p50", 50.0), ("p99", 99.0)), scale=1e-3)
    return {"iterations": iterations, "mean_us": figures["mean"], "p50_us": figures["p50"],
            "p99_us": figures["p99"]}


def _swallow(call: Callable[[], None], *errors: type[BaseException]) -> Callable[[], None]:
    def run() -> None:
        try:
            call()
        except errors:
            pass
    return run


def run(iterations: int, failure_iterations: int, state_dir: Path) -> dict[str, object]:
    """Measure every case and return the figures with their ratios."""
    figures: dict[str, dict[str, float]] = {}
    figures["bare_call"] = _measure(_noop, iterations)
    memory = CircuitBreaker("bench-memory")
    figures["memory_closed"] = _measure(lambda: memory.call(_noop), iterations)
    with BreakerStore.in_state_dir(state_dir) as store:
        persisted = CircuitBreaker("bench-persisted", store=store)
        figures["persisted_closed"] = _measure(lambda: persisted.call(_noop), iterations)
        failing = CircuitBreaker("bench-failing", store=store, failure_threshold=10**9)
        figures["persisted_failure_write"] = _measure(
            _swallow(lambda: failing.call(_fail), SendFailed), failure_iterations)
        tripped = CircuitBreaker("bench-open", store=store, failure_threshold=1, cooldown=3600)
        _swallow(lambda: tripped.call(_fail), SendFailed)()
        figures["persisted_open_fail_fast"] = _measure(
            _swallow(lambda: tripped.call(_noop), CircuitOpenError), iterations)
    p50 = {name: f["p50_us"] for name, f in figures.items()}
    ratios = {
        "memory_closed_vs_bare_call": p50["memory_closed"] / max(p50["bare_call"], 1e-3),
        "persisted_closed_vs_memory_closed": p50["persisted_closed"] / p50["memory_closed"],
        "persisted_failure_write_vs_persisted_closed": p50["persisted_failure_write"] / p50["persisted_closed"],
    }
    return {"benchmark": "breaker", "unit": "microseconds per call", "figures": figures, "ratios": ratios}


def main(argv: list[str] | None = None) -> int:
    """Run the breaker benchmark; print a summary and optionally write JSON."""
    parser = argparse.ArgumentParser(prog="spine bench breaker", description=__doc__)
    parser.add_argument("--iterations", type=int, default=20_000, help="calls per fast case (default 20000)")
    parser.add_argument("--failure-iterations", type=int, default=300,
                        help="calls that write a failure to SQLite, each with fsync (default 300)")
    parser.add_argument("--state-dir", type=Path, help="where the database goes (default: a temporary directory)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.state_dir is not None:
        result = run(args.iterations, args.failure_iterations, args.state_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="spine-bench-breaker-") as tmp:
            result = run(args.iterations, args.failure_iterations, Path(tmp))
    figures = result["figures"]
    assert isinstance(figures, dict)
    print("circuit breaker cost per call (µs)")
    for name, f in figures.items():
        print(f"  {name:<26} p50 {f['p50_us']:8.2f}  p99 {f['p99_us']:8.2f}  mean {f['mean_us']:8.2f}"
              f"  ({f['iterations']} calls)")
    print("ratios (p50)")
    for name, value in result["ratios"].items():  # type: ignore[union-attr]
        print(f"  {name:<44} {value:8.1f}x")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0
