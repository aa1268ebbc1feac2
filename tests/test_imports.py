"""Importing spine costs only what is used (PEP 562 lazy exports)."""

from __future__ import annotations

import json
import subprocess
import sys

import spine

HEAVY = ("zmq", "zmq.sugar.socket", "numpy", "spine.shm._seqlock", "spine.client.component")


def _modules_after(statement: str) -> set[str]:
    code = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def test_importing_framing_loads_no_socket_layer_numpy_or_shm_extension():
    loaded = _modules_after("import spine.protocol.framing")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_import_spine_alone_loads_nothing_heavy():
    loaded = _modules_after("import spine")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_every_public_name_resolves_and_is_cached():
    for name in spine.__all__:
        value = getattr(spine, name)
        assert value is not None
        assert name in vars(spine)


def test_unknown_attribute_is_an_attribute_error():
    try:
        spine.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("spine.no_such_name resolved")


def test_package_is_marked_typed():
    from importlib.resources import files
    assert files("spine").joinpath("py.typed").is_file()
