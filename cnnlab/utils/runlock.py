"""One run per folder: an OS file lock held for the run's lifetime.

Two ``cnnlab train`` runs writing into the same folder would overwrite each other's
checkpoint, so a later ``--resume`` could continue the wrong run. :func:`hold_run_folder`
takes an exclusive ``fcntl.flock`` on ``<folder>/.cnnlab-run.lock`` and writes the holder's
pid and command line into it; a second run is refused at once with that pid named. The OS
releases the lock when the process ends, however it ends (SIGKILL and crashes included), so
a stale lock file never blocks the next run.

Example (another thread asks for the folder while this one holds it):
    >>> import tempfile, threading
    >>> folder = tempfile.mkdtemp()
    >>> def other():
    ...     try:
    ...         with hold_run_folder(folder):
    ...             pass
    ...     except RunFolderBusy:
    ...         print("refused")
    >>> with hold_run_folder(folder):
    ...     t = threading.Thread(target=other); t.start(); t.join()
    refused
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path

LOCK_NAME = ".cnnlab-run.lock"
_HELD: dict[str, int] = {}  # lock path -> the thread holding it: that thread may nest (cnnlab train -> fit)
_HELD_GUARD = threading.Lock()


class RunFolderBusy(RuntimeError):
    """Another process holds the run folder."""


@contextlib.contextmanager
def hold_run_folder(folder, what: str = "cnnlab run"):
    """Hold ``folder``'s run lock for the ``with`` block.

    The thread that holds a folder may enter again (``cnnlab train`` holds its run folder, and
    the ``fit`` it calls holds its checkpoint's folder, the same one); another thread of the
    same process is refused like another process.

    Raises:
        RunFolderBusy: another process or thread holds it; the message names that process (pid
            and command line, as it wrote them).
        OSError: the lock file cannot be created.
    """
    path = Path(folder) / LOCK_NAME
    key = str(path.resolve())
    with _HELD_GUARD:
        owner = _HELD.get(key)
        if owner is None:
            _HELD[key] = threading.get_ident()
    if owner == threading.get_ident():
        yield path  # nested in this thread's own hold
        return
    if owner is not None:
        raise RunFolderBusy(f"{folder} is in use by another {what} in this process (thread {owner}); wait for it "
                            f"to finish, or choose another output folder")
    try:
        with _hold_os_lock(path, folder, what):
            yield path
    finally:
        with _HELD_GUARD:
            del _HELD[key]


@contextlib.contextmanager
def _hold_os_lock(path: Path, folder, what: str):
    """The exclusive ``flock`` on ``path``, with this process's pid and command line written in it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl
        except ImportError:  # not POSIX: no OS lock; the run proceeds as before
            fcntl = None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "pid unknown"
                raise RunFolderBusy(f"{folder} is in use by another {what} ({holder[:300]}); wait for it to finish, "
                                    f"or choose another output folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {' '.join(sys.argv)[:200]}\n".encode("utf-8", "replace"), 0)
        yield path
    finally:
        os.close(fd)  # closing releases the lock
