"""Files spine writes: atomically (a crash leaves the old file or the new one), in
directories nobody else can change, never through a symlink."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from spine.errors import UnsafeDirectoryError

NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def private_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700, parents too) or check the one that is there; return it.

    The check is ssh's for ``~/.ssh``: a directory (a symlink to one is followed, as
    systemd's ``DynamicUser`` state directories are symlinks), owned by this user or by
    root, and writable by nobody else. Otherwise :class:`UnsafeDirectoryError` says what is
    wrong and the ``chmod``/``chown`` that fixes it: a directory someone else can write is
    one where they can swap the ipc sockets, plant a lock file or read what is created.
    """
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeDirectoryError(path, "it is not a directory", f"rm {path}")
    me = os.geteuid()
    if st.st_uid not in (me, 0):
        raise UnsafeDirectoryError(
            path, f"it belongs to uid {st.st_uid}, not to this user (uid {me}); whoever made "
            "it can change what is in it", f"sudo chown {me} {path} (or remove it and let "
            "spine create it)")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022:
        writers = " and ".join(w for w, bit in (("group", 0o020), ("others", 0o002))
                               if mode & bit)
        raise UnsafeDirectoryError(path, f"it has mode {mode:04o}: {writers} can write to it",
                                   f"chmod go-w {path}")
    return path


def open_nofollow(path: Path, flags: int, mode: int = 0o600) -> int:
    """``os.open`` that refuses a symlink at ``path`` (ELOOP, as an OSError) and is CLOEXEC."""
    return os.open(path, flags | NOFOLLOW, mode)


def atomic_write(path: Path, data: bytes, mode: int = 0o644, *, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` through a temp file created with ``mode``, fsync and rename.

    The temp file gets its permissions at creation (``os.open`` with ``mode``), so a secret
    is never readable by others, not even for an instant. With ``exclusive`` an existing
    ``path`` is not replaced (FileExistsError).
    """
    path = Path(path)
    # A random part too: a temp file left by a killed process with our pid (pid 1 in a
    # container) must not block every later write.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = open_nofollow(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # exactly `mode`, whatever the umask took away
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    try:
        if exclusive:
            os.link(tmp, path)  # fails if path exists; never overwrites
            tmp.unlink()
        else:
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry so a rename in it survives a power loss."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is edited or replaced (mtime, size, inode); None if absent."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
