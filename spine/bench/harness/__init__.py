"""The 1 kHz latency harness (SPEC §8): the system's hot loop in separate processes, CURVE on.

``run_loop(LoopConfig(...)) -> LoopResult``; ``spine bench loop`` is its command line.
"""

from spine.bench.harness.config import LoopConfig
from spine.bench.harness.report import LoopResult
from spine.bench.harness.run import run_loop

__all__ = ["LoopConfig", "LoopResult", "run_loop"]
