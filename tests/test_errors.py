"""The one exception hierarchy: every error class in spine is a SpineError, no spine module
raises a bare built-in exception, and the broker's refusal reasons are the wire's enum."""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import spine
from spine import errors
from spine.errors import (CircuitOpenError, RecipientBusy, RecipientUnreachable, RefusalReason,
                          RoutingError, SpineError, UnknownRecipient)

ROOT = Path(spine.__file__).parent
BUILTIN_EXCEPTIONS = {name for name, value in vars(builtins).items()
                      if isinstance(value, type) and issubclass(value, BaseException)}
# Raised on purpose: the interpreter's own protocols, not errors spine reports.
# Being converted on their own branches (the benchmark infrastructure, the retry schedule).
PENDING = ("spine/resilience/retry.py",)
PROTOCOL_RAISES = {"AttributeError", "KeyboardInterrupt", "NotImplementedError",
                   "StopIteration", "StopAsyncIteration", "SystemExit"}


def _spine_modules() -> list[str]:
    return [info.name for info in pkgutil.walk_packages([str(ROOT)], "spine.")]


@pytest.mark.parametrize("module_name", _spine_modules())
def test_every_exception_class_in_spine_is_a_spine_error(module_name):
    module = importlib.import_module(module_name)
    for name, value in vars(module).items():
        if inspect.isclass(value) and issubclass(value, BaseException) \
                and value.__module__ == module_name:
            assert issubclass(value, SpineError), f"{module_name}.{name} is not a SpineError"


def test_no_spine_module_raises_a_bare_builtin_exception():
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        if str(path.relative_to(ROOT.parent)).startswith(PENDING):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Raise) and node.exc is not None:
                target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(target, ast.Name) and target.id in BUILTIN_EXCEPTIONS - PROTOCOL_RAISES:
                    offenders.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} raises {target.id}")
    assert not offenders, "\n".join(offenders)


def test_the_hierarchy_tree_in_the_docstring_names_every_class():
    classes = {name for name, value in vars(errors).items()
               if inspect.isclass(value) and issubclass(value, SpineError)}
    drawn = set(errors.__doc__.replace("├──", " ").replace("└──", " ").replace("│", " ").split())
    assert classes <= drawn, f"missing from the tree: {sorted(classes - drawn)}"


def test_refusal_reasons_are_the_wire_enum():
    from spine.protocol import neural_spike_pb2 as pb
    wire = dict(pb.Refusal.Reason.items())
    ours = {("REASON_UNSPECIFIED" if r is RefusalReason.UNSPECIFIED else r.name): int(r)
            for r in RefusalReason}
    assert ours == wire


@pytest.mark.parametrize("reason, cls", [
    (RefusalReason.UNKNOWN_RECIPIENT, UnknownRecipient),
    (RefusalReason.RECIPIENT_BUSY, RecipientBusy),
    (RefusalReason.UNREACHABLE, RecipientUnreachable),
    (RefusalReason.BAD_COMMAND, RoutingError),
    (RefusalReason.UNSPECIFIED, RoutingError),
])
def test_a_refusal_becomes_its_own_exception_with_the_reason_as_data(reason, cls):
    error = RoutingError.for_reason("why, in words", reason, "memory", 0.25)
    assert type(error) is cls
    assert (error.reason, error.recipient, error.retry_after, str(error)) == \
        (reason, "memory", 0.25, "why, in words")


def test_circuit_open_error_carries_its_breaker_and_retry_time():
    from datetime import datetime, timezone
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    error = CircuitOpenError("open", breaker="db", retry_at=at, retry_after=1.5)
    assert (error.breaker, error.retry_at, error.retry_after) == ("db", at, 1.5)
