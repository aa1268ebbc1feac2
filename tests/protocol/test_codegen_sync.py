"""The committed generated code is exactly what the pinned protoc makes from protos/.

Needs grpcio-tools from the test extra (pip install -e '.[test]').
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from spine.protocol import codegen

ROOT = Path(__file__).resolve().parents[2]


def test_committed_protobuf_code_is_in_sync_with_the_proto():
    result = subprocess.run([sys.executable, "-m", "spine.protocol.codegen", "--check"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "in sync" in result.stdout


def test_generation_is_reproducible(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    for one, two in zip(codegen.generate(first), codegen.generate(second)):
        assert one.read_bytes() == two.read_bytes()
