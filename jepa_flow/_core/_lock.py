"""One process per output directory: an ``fcntl.flock`` on a lock file inside it.

``locked_dir(path)`` creates ``path`` (and its parents), takes an exclusive,
non-blocking lock on ``path/.jepa-flow.lock`` and holds it for the ``with``
block. A second process that wants the same directory is refused at once with
a one-line ``DirectoryLocked`` (a ``ValueError``) naming the holder's pid,
instead of computing the same results twice or interleaving its files. The
kernel releases the lock when its holder exits for any reason, ``kill -9``
included, so a stale lock file never blocks a later run.

The lock file is removed on a normal release. (A file left by a killed
process is harmless and reused; ``LOCK_NAME`` is ignored wherever a directory
is checked for emptiness.)

Used by ``sweep``, ``reproduce``, ``simulate``/``demo``; the training CLI can
wrap its ``--out`` writes the same way::

    from jepa_flow._core._lock import locked_dir
    with locked_dir(out):
        ...  # compute and write under out
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path

LOCK_NAME = ".jepa-flow.lock"


class DirectoryLocked(ValueError):
    """Another process holds the output directory's lock (a ``ValueError``).

    Raised by ``run_sweep`` and the CLI's commands that write a directory, at
    once, naming the holder's pid; wait for that process or choose another
    directory.

    Examples:
        A second lock on a directory in use (here by the same process):

        >>> import tempfile, jepa_flow as jf
        >>> out = tempfile.mkdtemp()
        >>> with locked_dir(out):
        ...     try:
        ...         with locked_dir(out):
        ...             pass
        ...     except jf.DirectoryLocked as err:
        ...         print(str(err).split(" (pid")[0].replace(out, "OUT"))
        out 'OUT' is in use by another jepa-flow process
    """


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


@contextlib.contextmanager
def locked_dir(path, *, name: str = "out"):
    """Hold the exclusive lock of directory ``path`` (created if missing) for the block.

    Raises ``DirectoryLocked`` when another process holds it; ``name`` is the
    parameter named in the message.
    """
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    lock_path = out / LOCK_NAME
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise DirectoryLocked(
                    f"{name} {str(out)!r} is in use by another jepa-flow process"
                    f"{_holder(lock_path)}; wait for it to finish or choose another directory"
                ) from None
            raise
        # The holder we waited for may have removed the file between our open and
        # flock: then we hold a lock on a deleted inode; start over on the new file.
        try:
            same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield out
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_path)
        os.close(fd)
