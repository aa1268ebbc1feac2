"""Persistent CURVE identities (INF-03): modes, validation, load-or-create, interop."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path

import pytest
import zmq
import zmq.auth

from spine.errors import KeyFileError
from spine.fsutil import atomic_write
from spine.security import keys


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_secret(path: Path, data: bytes) -> None:
    atomic_write(path, data, 0o600)


@pytest.fixture
def umask_zero():
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_new_identity_has_0600_secret_and_0644_public(tmp_path):
    pair = keys.create_keypair(tmp_path, "memory-1")
    assert mode(keys.secret_path(tmp_path, "memory-1")) == 0o600
    assert mode(keys.public_path(tmp_path, "memory-1")) == 0o644
    assert len(pair.public) == len(pair.secret) == 40


def test_modes_hold_even_with_umask_zero(tmp_path, umask_zero):
    keys.create_keypair(tmp_path / "k", "memory-1")
    assert mode(keys.secret_path(tmp_path / "k", "memory-1")) == 0o600
    assert mode(keys.public_path(tmp_path / "k", "memory-1")) == 0o644
    assert mode(tmp_path / "k") == 0o700


def test_modes_hold_with_a_restrictive_umask(tmp_path):
    previous = os.umask(0o277)
    try:
        keys.create_keypair(tmp_path, "memory-1")
    finally:
        os.umask(previous)
    assert mode(keys.public_path(tmp_path, "memory-1")) == 0o644


def test_key_directory_is_created_private(tmp_path):
    keys.create_keypair(tmp_path / "a" / "b", "x")
    assert mode(tmp_path / "a" / "b") == 0o700


def test_no_temp_files_are_left_behind(tmp_path):
    keys.load_or_create(tmp_path, "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.key", "x.key_secret"]


@pytest.mark.parametrize("bad_mode", [0o644, 0o640, 0o604, 0o620, 0o666])
def test_secret_key_readable_or_writable_by_others_is_refused(tmp_path, bad_mode):
    keys.create_keypair(tmp_path, "x")
    os.chmod(keys.secret_path(tmp_path, "x"), bad_mode)
    with pytest.raises(KeyFileError, match="chmod 600") as info:
        keys.load_keypair(tmp_path, "x")
    assert str(keys.secret_path(tmp_path, "x")) in str(info.value)
    with pytest.raises(KeyFileError, match="chmod 600"):
        keys.load_or_create(tmp_path, "x")


def test_secret_key_with_mode_0400_is_accepted(tmp_path):
    pair = keys.create_keypair(tmp_path, "x")
    os.chmod(keys.secret_path(tmp_path, "x"), 0o400)
    assert keys.load_keypair(tmp_path, "x") == pair


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown a file to another user")
def test_secret_key_owned_by_another_user_is_refused(tmp_path):
    keys.create_keypair(tmp_path, "x")
    os.chown(keys.secret_path(tmp_path, "x"), 12345, -1)
    with pytest.raises(KeyFileError, match="belongs to uid 12345"):
        keys.load_keypair(tmp_path, "x")


def test_missing_identity_says_how_to_create_it(tmp_path):
    with pytest.raises(KeyFileError, match="spine keys init ghost"):
        keys.load_keypair(tmp_path, "ghost")


@pytest.mark.parametrize("content", [b"", bytes(range(256)), b"curve\n    nothing here\n"])
def test_corrupt_secret_file_is_refused(tmp_path, content):
    keys.create_keypair(tmp_path, "x")
    path = keys.secret_path(tmp_path, "x")
    path.unlink()
    write_secret(path, content)
    with pytest.raises(KeyFileError, match="corrupt"):
        keys.load_keypair(tmp_path, "x")


def test_secret_file_without_secret_key_line_is_refused(tmp_path):
    pair = keys.create_keypair(tmp_path, "x")
    path = keys.secret_path(tmp_path, "x")
    text = path.read_bytes().replace(b"secret-key", b"secret-kee")
    path.unlink()
    write_secret(path, text)
    with pytest.raises(KeyFileError, match="lacks a public-key or secret-key"):
        keys.load_keypair(tmp_path, "x")
    assert pair  # the identity was made; only its file is broken


@pytest.mark.parametrize("bad_secret", [b"~" * 40, b"short"])
def test_secret_that_is_not_a_z85_key_is_refused(tmp_path, bad_secret):
    pair = keys.create_keypair(tmp_path, "x")
    path = keys.secret_path(tmp_path, "x")
    text = path.read_bytes().replace(pair.secret, bad_secret)
    path.unlink()
    write_secret(path, text)
    with pytest.raises(KeyFileError, match="not a valid Z85"):
        keys.load_keypair(tmp_path, "x")


def test_secret_that_does_not_match_its_public_key_is_refused(tmp_path):
    pair = keys.create_keypair(tmp_path, "x")
    _, other_secret = zmq.curve_keypair()
    path = keys.secret_path(tmp_path, "x")
    text = path.read_bytes().replace(pair.secret, other_secret)
    path.unlink()
    write_secret(path, text)
    with pytest.raises(KeyFileError, match="does not match its public key"):
        keys.load_keypair(tmp_path, "x")


def test_public_file_that_disagrees_with_the_secret_is_refused(tmp_path):
    keys.create_keypair(tmp_path, "x")
    other = keys.create_keypair(tmp_path, "y")
    keys.public_path(tmp_path, "y").replace(keys.public_path(tmp_path, "x"))
    with pytest.raises(KeyFileError, match="does not match"):
        keys.load_keypair(tmp_path, "x")
    assert other


def test_corrupt_public_file_is_refused(tmp_path):
    keys.create_keypair(tmp_path, "x")
    keys.public_path(tmp_path, "x").write_bytes(b"garbage\n")
    with pytest.raises(KeyFileError, match="corrupt"):
        keys.load_keypair(tmp_path, "x")


def test_missing_public_file_is_rewritten_from_the_secret(tmp_path):
    pair = keys.create_keypair(tmp_path, "x")
    keys.public_path(tmp_path, "x").unlink()
    assert keys.load_keypair(tmp_path, "x") == pair
    assert keys.load_public(keys.public_path(tmp_path, "x")) == pair.public
    assert mode(keys.public_path(tmp_path, "x")) == 0o644


def test_load_or_create_keeps_the_identity_across_calls(tmp_path):
    first = keys.load_or_create(tmp_path, "physics")
    secret_bytes = keys.secret_path(tmp_path, "physics").read_bytes()
    second = keys.load_or_create(tmp_path, "physics")
    assert first == second
    assert keys.secret_path(tmp_path, "physics").read_bytes() == secret_bytes


def test_create_never_overwrites_an_existing_secret(tmp_path):
    pair = keys.create_keypair(tmp_path, "x")
    before = keys.secret_path(tmp_path, "x").read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        keys.create_keypair(tmp_path, "x")
    assert keys.secret_path(tmp_path, "x").read_bytes() == before
    assert keys.load_keypair(tmp_path, "x") == pair


def test_a_corrupt_secret_is_reported_not_replaced_by_load_or_create(tmp_path):
    keys.create_keypair(tmp_path, "x")
    path = keys.secret_path(tmp_path, "x")
    path.unlink()
    write_secret(path, b"junk")
    with pytest.raises(KeyFileError):
        keys.load_or_create(tmp_path, "x")
    assert path.read_bytes() == b"junk"


def _load_or_create_public(keys_dir: str) -> bytes:
    return keys.load_or_create(Path(keys_dir), "racer").public


def test_processes_racing_to_create_one_identity_all_get_the_same_key(tmp_path):
    with multiprocessing.get_context("fork").Pool(4) as pool:
        publics = pool.map(_load_or_create_public, [str(tmp_path)] * 8)
    assert len(set(publics)) == 1
    assert keys.load_keypair(tmp_path, "racer").public == publics[0]


def test_files_are_readable_by_pyzmq_load_certificate(tmp_path):
    pair = keys.create_keypair(tmp_path, "x")
    public, secret = zmq.auth.load_certificate(keys.secret_path(tmp_path, "x"))
    assert (public, secret) == (pair.public, pair.secret)
    public, secret = zmq.auth.load_certificate(keys.public_path(tmp_path, "x"))
    assert (public, secret) == (pair.public, None)
    assert zmq.auth.load_certificates(tmp_path) == {pair.public: True}


def test_keys_made_by_pyzmq_create_certificates_are_loaded(tmp_path):
    public_file, secret_file = zmq.auth.create_certificates(tmp_path, "legacy")
    os.chmod(secret_file, 0o600)
    pair = keys.load_keypair(tmp_path, "legacy")
    assert pair.public == zmq.auth.load_certificate(public_file)[0]


def test_load_public_reads_public_and_secret_certificates(tmp_path):
    pair = keys.create_keypair(tmp_path, "x")
    assert keys.load_public(keys.public_path(tmp_path, "x")) == pair.public
    assert keys.load_public(keys.secret_path(tmp_path, "x")) == pair.public
    with pytest.raises(KeyFileError, match="cannot read a public key"):
        keys.load_public(tmp_path / "nothing.key")


@pytest.mark.parametrize("name", ["", "-x", ".hidden", "a/b", "a b", "x" * 33, "name\n", "é"])
def test_invalid_identity_names_are_refused(tmp_path, name):
    with pytest.raises(KeyFileError, match="identity name"):
        keys.load_or_create(tmp_path, name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["a", "memory-1", "Physics_Engine.2", "x" * 32])
def test_valid_identity_names_are_accepted(name):
    assert keys.check_name(name) == name


def test_public_key_check_accepts_str_and_bytes():
    public, _ = zmq.curve_keypair()
    assert keys.check_public_key(public) == public
    assert keys.check_public_key(public.decode()) == public


@pytest.mark.parametrize("text", ["", "abc", "x" * 39, "x" * 41, "é" * 40, "x" * 39 + "é",
                                  "x" * 39 + "~", "x" * 40 + "\n", "x" * 39 + " "])
def test_malformed_public_keys_are_refused(text):
    with pytest.raises(KeyFileError, match="not a Z85"):
        keys.check_public_key(text)
