"""Morton keys (INT-06): 9 dimensions x 14 bits interleaved into 16 big-endian bytes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spine.errors import MortonRangeError
from spine.protocol import morton


@pytest.mark.parametrize(
    "coord, key",
    [
        ([0] * 9, 0),
        ([1], 1),  # x is the lowest bit of each 9-bit group
        ([0, 1], 1 << 1),  # y
        ([0, 0, 1], 1 << 2),  # z
        ([0] * 8 + [1], 1 << 8),  # s is the highest
        ([2], 1 << 9),  # x's second bit opens the next group
        ([1] * 9, 0x1FF),
        ([3, 0, 0, 0, 0, 0, 0, 0, 1], (1 << 0) | (1 << 9) | (1 << 8)),
        ([0b101, 0b011], (1 << 0) | (1 << 18) | (1 << 1) | (1 << 10)),
        ([1 << 13], 1 << 117),  # x's top bit
        ([0] * 8 + [1 << 13], 1 << 125),  # the highest key bit used
        ([morton.MAX_COORDINATE] * 9, (1 << 126) - 1),
        ([1 << 7], 1 << 63),  # last bit of the low half
        ([0, 1 << 7], 1 << 64),  # first bit of the high half
    ],
)
def test_hand_checked_interleavings(coord, key):
    assert morton.key_of(coord) == key
    assert morton.coordinate_of(key) == tuple(coord + [0] * (9 - len(coord)))


def test_wire_form_is_sixteen_big_endian_bytes():
    assert morton.key_to_bytes(morton.key_of([1])) == bytes(15) + b"\x01"
    assert morton.key_to_bytes(1 << 125) == b"\x20" + bytes(15)
    arr = morton.keys_to_bytes(morton.encode([[1, 0], [0, 1 << 7]]))
    assert arr.shape == (2, 16) and bytes(arr[0]) == bytes(15) + b"\x01"
    assert bytes(arr[1]) == bytes(7) + b"\x01" + bytes(8)


def reference_key(coord) -> int:
    key = 0
    for b in range(morton.BITS):
        for d, c in enumerate(coord):
            key |= ((int(c) >> b) & 1) << (morton.DIMENSIONS * b + d)
    return key


def test_vectorised_encoding_matches_the_bit_by_bit_definition():
    coords = np.random.default_rng(3).integers(0, morton.MAX_COORDINATE + 1, (500, 9))
    raw = morton.keys_to_bytes(morton.encode(coords))
    assert [int.from_bytes(bytes(r), "big") for r in raw] == [reference_key(c) for c in coords]


def test_random_coordinates_round_trip_through_bytes():
    coords = np.random.default_rng(4).integers(0, morton.MAX_COORDINATE + 1, (100_000, 9))
    raw = morton.keys_to_bytes(morton.encode(coords))
    np.testing.assert_array_equal(morton.decode(morton.keys_from_bytes(raw)), coords)
    as_list = [bytes(r) for r in raw[:100]]
    np.testing.assert_array_equal(morton.decode(morton.keys_from_bytes(as_list)), coords[:100])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, morton.MAX_COORDINATE), min_size=9, max_size=9))
def test_any_coordinate_round_trips(coord):
    key = morton.key_of(coord)
    assert key == reference_key(coord)
    assert morton.key_from_bytes(morton.key_to_bytes(key)) == key
    assert morton.coordinate_of(key) == tuple(coord)


@pytest.mark.parametrize("coord", [[-1], [morton.MAX_COORDINATE + 1], [0] * 8 + [1 << 14], [0.5]])
def test_coordinate_out_of_range_is_refused(coord):
    with pytest.raises(MortonRangeError):
        morton.encode([coord])


def test_malformed_keys_and_shapes_are_refused():
    with pytest.raises(MortonRangeError, match="shape"):
        morton.encode(np.zeros((2, 10), dtype=np.int64))
    with pytest.raises(MortonRangeError, match="exactly 16"):
        morton.keys_from_bytes([bytes(16), bytes(15)])
    with pytest.raises(MortonRangeError, match="bits above"):
        morton.key_from_bytes(b"\x40" + bytes(15))
    with pytest.raises(MortonRangeError, match="bits above"):
        morton.decode(morton.keys_from_bytes(b"\x80" + bytes(15)))
    with pytest.raises(MortonRangeError):
        morton.coordinate_of(1 << 126)
