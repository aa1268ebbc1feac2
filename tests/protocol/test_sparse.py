"""Sparse waveforms (NET-02): keep exactly |Ψ| > θ and reconstruct the kept nodes exactly."""

from __future__ import annotations

import numpy as np
import pytest

from spine.errors import SparseWaveformError
from spine.protocol import neural_spike_pb2 as pb
from spine.protocol import sparse


def grid_with_hot_nodes(shape, density=0.01, seed=0):
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    grid = (rng.standard_normal(n) + 1j * rng.standard_normal(n)) * 1e-3
    hot = rng.choice(n, max(1, int(n * density)), replace=False)
    grid[hot] = rng.standard_normal(hot.size) + 1j * rng.standard_normal(hot.size)
    return grid.reshape(shape)


def test_kept_set_is_exactly_amplitude_above_a_tenth_of_the_rms():
    grid = grid_with_hot_nodes((40, 50, 30))
    enc = sparse.encode(grid)
    amplitude = np.abs(grid)
    assert enc.threshold == pytest.approx(0.1 * np.sqrt(np.mean(amplitude**2)), rel=1e-12)
    assert enc.total_energy == pytest.approx(np.sum(amplitude**2), rel=1e-12)
    decoded = sparse.decode(enc, grid.shape)
    np.testing.assert_array_equal(decoded != 0, amplitude > enc.threshold)
    assert enc.active_node_count == np.count_nonzero(amplitude > enc.threshold)


def test_round_trip_through_the_wire_is_exact_for_kept_nodes():
    grid = grid_with_hot_nodes((16, 8, 4, 2), seed=1)
    enc = sparse.encode(grid)
    msg = pb.SparseWaveform.FromString(enc.to_proto().SerializeToString())
    assert all(len(k) == 16 for k in msg.indices)
    assert (msg.dimension_size, msg.active_node_count) == (grid.size, enc.active_node_count)
    decoded = sparse.decode(sparse.SparseGrid.from_proto(msg), grid.shape)
    kept = np.abs(grid) > enc.threshold
    np.testing.assert_array_equal(decoded[kept], grid[kept].astype(np.complex64))
    assert not decoded[~kept].any()


def test_explicit_threshold_and_factor_are_honoured():
    grid = np.array([0.5, 1.0, 2.0, -3.0j, 0.0], dtype=np.complex128)
    assert sparse.encode(grid, threshold=1.0).active_node_count == 2
    assert sparse.encode(grid, factor=0.0).active_node_count == 4


def test_node_keys_are_morton_keys_of_grid_coordinates():
    grid = np.zeros((4, 4), dtype=np.complex128)
    grid[1, 2] = 5.0  # x=1, y=2 -> key bits 0 (x) and 9*1+1=10 (y's second bit)
    enc = sparse.encode(grid)
    assert [int.from_bytes(bytes(k), "big") for k in enc.keys] == [(1 << 0) | (1 << 10)]


def test_inconsistent_messages_are_refused():
    enc = sparse.encode(grid_with_hot_nodes((10, 10), density=0.1))
    msg = enc.to_proto()
    msg.real_part.append(1.0)
    with pytest.raises(SparseWaveformError, match="disagree"):
        sparse.SparseGrid.from_proto(msg)
    msg = enc.to_proto()
    msg.indices[0] = b"short"
    with pytest.raises(SparseWaveformError, match="16"):
        sparse.SparseGrid.from_proto(msg)
    with pytest.raises(SparseWaveformError, match="does not hold"):
        sparse.decode(enc, (10, 11))


def test_node_outside_the_declared_grid_is_refused():
    grid = np.zeros((8, 8), dtype=np.complex128)
    grid[7, 7] = 1.0
    enc = sparse.encode(grid)
    with pytest.raises(SparseWaveformError, match="outside the grid"):
        sparse.decode(enc, (16, 4))


def test_grids_that_do_not_fit_morton_keys_are_refused():
    with pytest.raises(SparseWaveformError, match="complex"):
        sparse.encode(np.zeros(4))
    with pytest.raises(SparseWaveformError, match="does not fit"):
        sparse.encode(np.zeros((1,) * 10, dtype=np.complex128))
    with pytest.raises(SparseWaveformError, match="does not fit"):
        sparse.encode(np.zeros(16385, dtype=np.complex128))
