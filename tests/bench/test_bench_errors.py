"""Every error the benchmarks raise is a SpineError carrying its reason as attributes."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import spine.bench
from spine.errors import BenchError, HarnessError, SpineError

# raised on purpose and caught again: the dependency the breaker benchmark simulates failing,
# and argparse's protocol for a type= converter refusing a value
NOT_SPINE = {("spine.bench.loop", "argparse.ArgumentTypeError")}


def _bench_modules() -> list[str]:
    return [info.name for info in pkgutil.walk_packages(spine.bench.__path__, "spine.bench.")]


def _raised_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            names.add(ast.unparse(node.exc.func))
    return names


def test_every_exception_raised_in_spine_bench_is_a_spine_error():
    checked = 0
    for name in _bench_modules():
        module = importlib.import_module(name)
        for raised in _raised_names(Path(module.__file__)):
            if (name, raised) in NOT_SPINE:
                continue
            cls = module
            for part in raised.split("."):
                cls = getattr(cls, part)
            assert issubclass(cls, SpineError), f"{name} raises {raised}, not a SpineError"
            checked += 1
    assert checked > 10


def test_a_bench_error_carries_reason_role_and_timeout():
    exc = BenchError("shm reader process did not start within 10 s", reason=BenchError.NOT_READY,
                     role="shm reader", timeout=10)
    assert isinstance(exc, HarnessError)
    assert (exc.reason, exc.role, exc.timeout) == ("not_ready", "shm reader", 10)
    assert str(exc) == "shm reader process did not start within 10 s"
    plain = BenchError("the data backlog reached only 12 messages", reason=BenchError.INCOMPLETE)
    assert (plain.role, plain.timeout) == (None, None)
