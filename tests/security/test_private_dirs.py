"""Runtime, key and state directories are checked as ssh checks ~/.ssh; files in them are
never opened through a symlink."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from spine.errors import ConfigError, UnsafeDirectoryError
from spine.fsutil import atomic_write, open_nofollow, private_dir
from spine.security import keys, whitelist

ENV_VARS = ("SPINE_KEYS_DIR", "SPINE_RUNTIME_DIR", "SPINE_STATE_DIR", "RUNTIME_DIRECTORY",
            "STATE_DIRECTORY", "CONFIGURATION_DIRECTORY", "XDG_RUNTIME_DIR")
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


def test_a_new_directory_is_made_private(tmp_path):
    made = private_dir(tmp_path / "a" / "b")
    assert made.stat().st_mode & 0o777 == 0o700


def test_an_existing_private_directory_and_a_symlink_to_one_are_accepted(tmp_path):
    real = private_dir(tmp_path / "private" / "spine")
    (tmp_path / "spine").symlink_to(real)  # systemd's DynamicUser state directories
    assert private_dir(tmp_path / "spine") == tmp_path / "spine"


@pytest.mark.parametrize("mode, writers", [(0o777, "group and others"), (0o770, "group"),
                                           (0o703, "others")])
def test_a_directory_others_can_write_is_refused_with_the_chmod_that_fixes_it(
        tmp_path, mode, writers):
    shared = tmp_path / "run"
    shared.mkdir()
    shared.chmod(mode)
    with pytest.raises(UnsafeDirectoryError) as caught:
        private_dir(shared)
    assert f"{writers} can write to it" in caught.value.problem
    assert caught.value.fix == f"chmod go-w {shared}" and caught.value.path == shared
    shared.chmod(0o700)
    assert private_dir(shared) == shared


@root_only
def test_a_directory_of_another_user_is_refused_with_the_chown_that_fixes_it(tmp_path):
    theirs = tmp_path / "spine-0"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)
    with pytest.raises(UnsafeDirectoryError, match="belongs to uid 65534") as caught:
        private_dir(theirs)
    assert caught.value.fix.startswith(f"sudo chown {os.geteuid()} {theirs}")


def test_a_file_where_the_directory_should_be_is_refused(tmp_path):
    (tmp_path / "run").write_text("")
    with pytest.raises((UnsafeDirectoryError, FileExistsError)):
        private_dir(tmp_path / "run")


def test_open_nofollow_refuses_a_symlink_and_writes_nothing_through_it(tmp_path):
    target = tmp_path / "target"
    (tmp_path / "lock").symlink_to(target)
    with pytest.raises(OSError):
        open_nofollow(tmp_path / "lock", os.O_RDWR | os.O_CREAT)
    assert not target.exists()


def test_keys_whitelist_and_state_use_the_check(tmp_path):
    from spine.resilience.paths import ensure_state_dir
    from spine.protocol import neural_spike_pb2 as pb
    for d in ("keys", "state"):
        (tmp_path / d).mkdir(mode=0o777)
        (tmp_path / d).chmod(0o777)
    with pytest.raises(UnsafeDirectoryError):
        keys.load_or_create(tmp_path / "keys", "worker")
    with pytest.raises(UnsafeDirectoryError):
        whitelist.add_entry(tmp_path / "keys", whitelist.Entry(b"x" * 40, "w", pb.MEMORY_SYSTEM))
    with pytest.raises(UnsafeDirectoryError):
        ensure_state_dir(tmp_path / "state")
    assert list((tmp_path / "keys").iterdir()) == []


def test_a_whitelist_lock_that_is_a_symlink_is_refused(tmp_path):
    from spine.protocol import neural_spike_pb2 as pb
    keys_dir = private_dir(tmp_path / "keys")
    (keys_dir / ".whitelist.lock").symlink_to(tmp_path / "elsewhere")
    pair = keys.load_or_create(keys_dir, "w")
    with pytest.raises(OSError):
        whitelist.add_entry(keys_dir, whitelist.Entry(pair.public, "w", pb.MEMORY_SYSTEM))
    assert not (tmp_path / "elsewhere").exists()


def _broker(tmp_path: Path, runtime: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    return subprocess.run([sys.executable, "-m", "spine", "broker", "--keys-dir",
                           str(tmp_path / "keys"), "--runtime-dir", str(runtime)],
                          env=env, capture_output=True, text=True, timeout=60)


def test_the_broker_refuses_a_runtime_directory_others_can_write(tmp_path):
    runtime = tmp_path / "run"
    runtime.mkdir()
    runtime.chmod(0o777)  # as a local user who made /tmp/spine-$UID first would leave it
    done = _broker(tmp_path, runtime)
    assert done.returncode == 2
    assert f"{runtime}: it has mode 0777: group and others can write to it, so it is " \
        f"refused. Fix it with: chmod go-w {runtime}" in done.stderr
    assert list(runtime.iterdir()) == []  # no lock, no socket


def test_the_broker_refuses_a_lock_file_that_is_a_symlink(tmp_path):
    runtime = private_dir(tmp_path / "run")
    victim = tmp_path / "victim"
    (runtime / "broker.lock").symlink_to(victim)
    done = _broker(tmp_path, runtime)
    assert done.returncode == 2
    assert "a symlink there is refused" in done.stderr and f"rm {runtime}/broker.lock" in done.stderr
    assert not victim.exists()
    assert sorted(p.name for p in runtime.iterdir()) == ["broker.lock"]


