"""Sparse encoding of a large complex grid at ~1 % density against one np.abs pass over it."""

from __future__ import annotations

import time

import numpy as np

from spine.bench.stats import percentile
from spine.protocol import sparse


def sparse_vs_abs(nodes: int, density: float, reps: int) -> dict:
    """Median (nearest rank) time of sparse.encode on a `nodes`-node complex128 grid vs one np.abs pass over it."""
    rng = np.random.default_rng(4)
    grid = (rng.standard_normal(nodes) + 1j * rng.standard_normal(nodes)) * 1e-4
    hot = rng.choice(nodes, int(nodes * density), replace=False)
    grid[hot] = rng.standard_normal(hot.size) + 1j * rng.standard_normal(hot.size)
    side = round(nodes ** (1 / 3))
    grid = grid[: side**3].reshape(side, side, side)
    abs_t, enc_t = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        np.abs(grid)
        abs_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        enc = sparse.encode(grid)
        enc_t.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    msg = enc.to_proto()
    wire = len(msg.SerializeToString())
    proto_s = time.perf_counter() - t0
    return {"nodes": int(grid.size), "kept": enc.active_node_count, "abs_ms": percentile(abs_t, 50) * 1e3,
            "encode_ms": percentile(enc_t, 50) * 1e3, "to_proto_ms": proto_s * 1e3,
            "dense_bytes": int(grid.nbytes), "wire_bytes": wire}
