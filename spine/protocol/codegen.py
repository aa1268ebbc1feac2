"""Regenerate the Python protobuf code from ``protos/`` reproducibly.

The generator is the ``protoc`` bundled in the pinned ``grpcio-tools`` of the ``test``
extra, so the same sources always give the same bytes. Run from the project root::

    python -m spine.protocol.codegen          # rewrite spine/protocol/neural_spike_pb2.py(i)
    python -m spine.protocol.codegen --check  # exit 1 if the committed code is stale
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from spine.errors import CommandUnavailable

PROTO = "spine/v1/neural_spike.proto"
OUTPUTS = ("neural_spike_pb2.py", "neural_spike_pb2.pyi")


def project_root() -> Path:
    """Return the checkout root (the folder holding ``protos/``)."""
    return Path(__file__).resolve().parents[2]


def generate(dest: Path, root: Path | None = None) -> list[Path]:
    """Run protoc on the v1 contract and write the generated modules into ``dest``."""
    root = root or project_root()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{root / 'protos'}",
               f"--python_out={tmp}", f"--pyi_out={tmp}", str(root / "protos" / PROTO)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise CommandUnavailable(f"protoc failed: {result.stderr.strip()} "
                               "(is the test extra installed? pip install -e '.[test]')")
        written = []
        for name in OUTPUTS:
            target = dest / name
            shutil.copyfile(Path(tmp) / "spine" / "v1" / name, target)
            written.append(target)
        return written


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: regenerate, or with ``--check`` compare with the committed code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    here = Path(__file__).resolve().parent
    if not args.check:
        for path in generate(here):
            print(f"wrote {path}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        stale = [p.name for p in generate(Path(tmp))
                 if p.read_bytes() != (here / p.name).read_bytes()]
    if stale:
        print(f"stale generated code: {', '.join(stale)}; run python -m spine.protocol.codegen")
        return 1
    print("generated code is in sync with protos/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
