"""Sparse waveforms (NET-02): keep only the nodes of a dense complex grid with |Ψ| > θ.

θ = 0.1 × RMS(|Ψ|) by default, which for typical grids keeps about 1 % of
the nodes (160 MB → 1.6 MB for 10 M complex128 nodes).  The result is a
structure of arrays: node i is (keys[i], real[i], imag[i]), where keys are the
nodes' 128-bit Morton keys (grid axis j is Morton dimension j: x, y, z, …).
Values travel as float32 (the SparseWaveform wire type), so a kept node
comes back exactly as `complex64(Ψ)`.  Everything is vectorised with numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spine.errors import MortonRangeError, SparseWaveformError
from spine.protocol import morton
from spine.protocol import neural_spike_pb2 as pb

DEFAULT_FACTOR = 0.1
# the wire's dimension_size is a uint32 count of the dense grid's nodes
MAX_NODES = 2**32 - 1


@dataclass(frozen=True)
class SparseGrid:
    """The kept nodes of a grid, in structure-of-arrays form.

    `keys` is (n, 16) uint8 (big-endian Morton keys), `real` and `imag` are
    float32 of length n.  `total_energy` is Σ|Ψ|² over the whole dense grid,
    `node_count` the dense grid's size, `threshold` the θ that was applied.
    """

    keys: np.ndarray
    real: np.ndarray
    imag: np.ndarray
    total_energy: float
    node_count: int
    threshold: float

    @property
    def active_node_count(self) -> int:
        """How many nodes were kept."""
        return int(self.real.shape[0])

    def to_proto(self) -> pb.SparseWaveform:
        """The SparseWaveform message carrying these nodes."""
        msg = pb.SparseWaveform(
            total_energy=self.total_energy,
            dimension_size=self.node_count,
            active_node_count=self.active_node_count,
            significance_threshold=self.threshold,
        )
        raw = self.keys.tobytes()
        msg.indices.extend([raw[i:i + morton.KEY_BYTES] for i in range(0, len(raw), morton.KEY_BYTES)])
        msg.real_part.extend(self.real.tolist())
        msg.imag_part.extend(self.imag.tolist())
        return msg

    @classmethod
    def from_proto(cls, msg: pb.SparseWaveform) -> SparseGrid:
        """Check a received SparseWaveform (array lengths, key sizes, counts) and unpack it.

        Raises SparseWaveformError if it is inconsistent.
        """
        n = len(msg.indices)
        if len(msg.real_part) != n or len(msg.imag_part) != n or msg.active_node_count != n:
            raise SparseWaveformError(
                f"SparseWaveform arrays disagree: {n} indices, {len(msg.real_part)} real, "
                f"{len(msg.imag_part)} imag, active_node_count {msg.active_node_count}"
            )
        if n > msg.dimension_size:
            raise SparseWaveformError(f"SparseWaveform keeps {n} nodes of a {msg.dimension_size}-node grid")
        try:
            keys = morton.keys_to_bytes(morton.keys_from_bytes(msg.indices))
        except MortonRangeError as e:
            raise SparseWaveformError(f"SparseWaveform has a bad index: {e}") from None
        return cls(
            keys=keys,
            real=np.asarray(msg.real_part, dtype=np.float32),
            imag=np.asarray(msg.imag_part, dtype=np.float32),
            total_energy=msg.total_energy,
            node_count=msg.dimension_size,
            threshold=msg.significance_threshold,
        )


def encode(grid: np.ndarray, factor: float = DEFAULT_FACTOR, threshold: float | None = None) -> SparseGrid:
    """Keep the nodes of `grid` (complex, 1 to 9 axes of at most 16384) with |Ψ| > θ.

    θ is `threshold` if given, else `factor` × RMS(|Ψ|).  The kept set is
    exactly `np.abs(grid) > θ`.
    """
    grid = np.asarray(grid)
    if not np.iscomplexobj(grid):
        raise SparseWaveformError(f"a waveform grid is complex, got {grid.dtype}")
    if not 1 <= grid.ndim <= morton.DIMENSIONS or max(grid.shape) - 1 > morton.MAX_COORDINATE:
        raise SparseWaveformError(
            f"grid shape {grid.shape} does not fit a Morton key: 1 to {morton.DIMENSIONS} axes of at most "
            f"{morton.MAX_COORDINATE + 1} nodes"
        )
    if grid.size > MAX_NODES:
        raise SparseWaveformError(f"grid of {grid.size} nodes is larger than a SparseWaveform can describe")
    flat = grid.reshape(-1)
    amplitude = np.abs(flat)
    energy = float(np.dot(amplitude, amplitude))
    if threshold is None:
        threshold = factor * math.sqrt(energy / flat.size) if flat.size else 0.0
    kept = np.flatnonzero(amplitude > threshold)
    values = flat[kept]
    coords = np.stack(np.unravel_index(kept, grid.shape), axis=1)
    return SparseGrid(
        keys=morton.keys_to_bytes(morton.encode(coords)),
        real=values.real.astype(np.float32),
        imag=values.imag.astype(np.float32),
        total_energy=energy,
        node_count=int(flat.size),
        threshold=float(threshold),
    )


def decode(sparse: SparseGrid, shape: tuple[int, ...], dtype: type = np.complex64) -> np.ndarray:
    """The dense grid of `shape` with the kept nodes filled in and zeros elsewhere.

    Raises SparseWaveformError if `shape` does not have `node_count` nodes or
    a key points outside it.
    """
    shape = tuple(int(s) for s in shape)
    if math.prod(shape) != sparse.node_count or not 1 <= len(shape) <= morton.DIMENSIONS:
        raise SparseWaveformError(f"shape {shape} does not hold the waveform's {sparse.node_count} nodes")
    n = sparse.active_node_count
    if sparse.keys.shape != (n, morton.KEY_BYTES) or sparse.imag.shape != (n,):
        raise SparseWaveformError("keys, real and imag arrays of the sparse waveform differ in length")
    try:
        coords = morton.decode(morton.keys_from_bytes(sparse.keys))
    except MortonRangeError as e:
        raise SparseWaveformError(f"bad Morton key in sparse waveform: {e}") from None
    extent = np.array(shape + (1,) * (morton.DIMENSIONS - len(shape)))
    outside = np.any(coords >= extent, axis=1)
    if outside.any():
        row = int(np.argmax(outside))
        raise SparseWaveformError(f"node {row} at {tuple(coords[row])} lies outside the grid {shape}")
    dense = np.zeros(sparse.node_count, dtype=dtype)
    flat_index = np.ravel_multi_index(tuple(coords[:, : len(shape)].T), shape)
    values = np.empty(n, dtype=dtype)
    values.real = sparse.real
    values.imag = sparse.imag
    dense[flat_index] = values
    return dense.reshape(shape)
