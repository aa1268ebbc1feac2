"""128-bit Morton (Z-order) keys for 9-D coordinates (INT-06), vectorised with numpy.

A coordinate (x, y, z, t, u, v, w, r, s) of 14-bit non-negative integers is
bit-interleaved into one key: bit b of dimension d becomes key bit 9*b + d,
so x holds the lowest bit of every 9-bit group and s the highest (126 bits
used, the top two are zero).  On the wire a key is 16 raw bytes, big-endian.

Arrays of keys are `(n, 2)` uint64 arrays of (high, low) 64-bit halves;
`keys_to_bytes` / `keys_from_bytes` convert to and from `(n, 16)` uint8.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from spine.errors import MortonRangeError

DIMENSIONS = 9
BITS = 14
MAX_COORDINATE = (1 << BITS) - 1
KEY_BYTES = 16
KEY_BITS = DIMENSIONS * BITS  # 126

_U64 = np.uint64


def _spread_tables() -> tuple[np.ndarray, np.ndarray]:
    """For every 14-bit value v: v's bit b moved to bit 9*b, as (high, low) 64-bit halves."""
    values = np.arange(1 << BITS, dtype=_U64)
    lo = np.zeros(1 << BITS, dtype=_U64)
    hi = np.zeros(1 << BITS, dtype=_U64)
    for b in range(BITS):
        bit = (values >> _U64(b)) & _U64(1)
        pos = DIMENSIONS * b
        if pos < 64:
            lo |= bit << _U64(pos)
        else:
            hi |= bit << _U64(pos - 64)
    return hi, lo


_SPREAD_HI, _SPREAD_LO = _spread_tables()
# for every 9-bit group g of a key: the bit it gives each of the 9 dimensions
_GROUP_BITS = ((np.arange(512)[:, None] >> np.arange(DIMENSIONS)[None, :]) & 1).astype(np.uint16)


def _as_coordinates(coords: Iterable[Sequence[int]] | np.ndarray) -> np.ndarray:
    """Validate coordinates into an (n, k<=9) int64 array (missing trailing dimensions are zero)."""
    try:
        arr = np.asarray(coords)
    except ValueError:
        raise MortonRangeError("coordinates must be a rectangular (n, k) array: rows differ in length") from None
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or not 1 <= arr.shape[1] <= DIMENSIONS:
        raise MortonRangeError(f"coordinates must have shape (n, 1..{DIMENSIONS}), got {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not (np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.floor(arr))):
            raise MortonRangeError("coordinates must be integers")
    arr = arr.astype(np.int64, copy=False)
    bad = (arr < 0) | (arr > MAX_COORDINATE)
    if bad.any():
        row, dim = np.argwhere(bad)[0]
        raise MortonRangeError(
            f"coordinate {int(arr[row, dim])} in dimension {'xyztuvwrs'[dim]} (row {row}) is outside "
            f"0..{MAX_COORDINATE}: a Morton key holds {BITS} bits per dimension"
        )
    return arr


def encode(coords: Iterable[Sequence[int]] | np.ndarray) -> np.ndarray:
    """Keys of an (n, k<=9) array of coordinates, as an (n, 2) uint64 array of (high, low) halves.

    Raises MortonRangeError for a coordinate outside 0..16383 or a bad shape.
    """
    arr = _as_coordinates(coords)
    n = arr.shape[0]
    hi = np.zeros(n, dtype=_U64)
    lo = np.zeros(n, dtype=_U64)
    for d in range(arr.shape[1]):  # absent dimensions are zero and add no bits
        column = arr[:, d]
        s_hi = _SPREAD_HI[column]
        s_lo = _SPREAD_LO[column]
        if d == 0:
            hi |= s_hi
            lo |= s_lo
        else:
            shift = _U64(d)
            hi |= (s_hi << shift) | (s_lo >> _U64(64 - d))
            lo |= s_lo << shift
    return np.stack([hi, lo], axis=1)


def decode(keys: np.ndarray) -> np.ndarray:
    """Coordinates (n, 9) int64 of an (n, 2) uint64 key array; MortonRangeError if a key uses bits 126-127."""
    keys = np.asarray(keys, dtype=_U64)
    if keys.ndim != 2 or keys.shape[1] != 2:
        raise MortonRangeError(f"keys must have shape (n, 2) of (high, low) uint64, got {keys.shape}")
    hi, lo = keys[:, 0], keys[:, 1]
    if np.any(hi >> _U64(KEY_BITS - 64)):
        raise MortonRangeError(f"a Morton key uses bits above bit {KEY_BITS - 1}: not a 9-D, {BITS}-bit key")
    coords = np.zeros((keys.shape[0], DIMENSIONS), dtype=np.uint16)
    mask = _U64(511)
    for b in range(BITS):
        start = DIMENSIONS * b
        if start + DIMENSIONS <= 64:
            group = (lo >> _U64(start)) & mask
        elif start >= 64:
            group = (hi >> _U64(start - 64)) & mask
        else:  # the group straddles the two halves
            group = ((lo >> _U64(start)) | (hi << _U64(64 - start))) & mask
        coords |= _GROUP_BITS[group.astype(np.intp)] << np.uint16(b)
    return coords.astype(np.int64)


def keys_to_bytes(keys: np.ndarray) -> np.ndarray:
    """(n, 16) uint8 array: each key as 16 big-endian bytes, the wire form."""
    keys = np.asarray(keys, dtype=_U64)
    return np.ascontiguousarray(keys.astype(">u8")).view(np.uint8).reshape(-1, KEY_BYTES)


def keys_from_bytes(raw: np.ndarray | bytes | Sequence[bytes]) -> np.ndarray:
    """(n, 2) uint64 keys from an (n, 16) uint8 array, flat bytes, or a sequence of 16-byte strings.

    Raises MortonRangeError if any key is not exactly 16 bytes.
    """
    if isinstance(raw, np.ndarray):
        if raw.dtype != np.uint8:
            raise MortonRangeError(f"key bytes must be a uint8 array, got {raw.dtype}")
        arr = raw
    elif isinstance(raw, (bytes, bytearray, memoryview)):
        arr = np.frombuffer(raw, dtype=np.uint8)
    else:
        items = list(raw)
        bad = next((i for i, item in enumerate(items) if len(item) != KEY_BYTES), None)
        if bad is not None:
            raise MortonRangeError(f"Morton key {bad} is {len(items[bad])} bytes; keys are exactly {KEY_BYTES}")
        arr = np.frombuffer(b"".join(items), dtype=np.uint8)
    if arr.ndim == 1:
        if arr.size % KEY_BYTES:
            raise MortonRangeError(f"{arr.size} bytes is not a whole number of {KEY_BYTES}-byte keys")
        arr = arr.reshape(-1, KEY_BYTES)
    if arr.ndim != 2 or arr.shape[1] != KEY_BYTES:
        raise MortonRangeError(f"keys must be {KEY_BYTES} bytes each, got shape {arr.shape}")
    return np.ascontiguousarray(arr).view(">u8").astype(_U64)


def key_of(coord: Sequence[int]) -> int:
    """The key of one coordinate as a Python int (0 <= key < 2**126)."""
    hi, lo = encode([coord])[0]
    return (int(hi) << 64) | int(lo)


def coordinate_of(key: int) -> tuple[int, ...]:
    """The 9-D coordinate of one key given as a Python int."""
    if not 0 <= key < (1 << KEY_BITS):
        raise MortonRangeError(f"Morton key {key:#x} is outside 0..2**{KEY_BITS}-1")
    keys = np.array([[key >> 64, key & ((1 << 64) - 1)]], dtype=_U64)
    return tuple(int(c) for c in decode(keys)[0])


def key_to_bytes(key: int) -> bytes:
    """One key as its 16 big-endian wire bytes."""
    if not 0 <= key < (1 << KEY_BITS):
        raise MortonRangeError(f"Morton key {key:#x} is outside 0..2**{KEY_BITS}-1")
    return key.to_bytes(KEY_BYTES, "big")


def key_from_bytes(raw: bytes) -> int:
    """One key from its 16 big-endian wire bytes."""
    if len(raw) != KEY_BYTES:
        raise MortonRangeError(f"a Morton key is exactly {KEY_BYTES} bytes, got {len(raw)}")
    key = int.from_bytes(raw, "big")
    if key >> KEY_BITS:
        raise MortonRangeError(f"Morton key {raw.hex()} uses bits above bit {KEY_BITS - 1}")
    return key
