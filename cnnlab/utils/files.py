"""Writing files safely: one atomic writer for models, checkpoints, logs, reports and data.

A file is written to a temp file in its own folder, flushed to disk and renamed onto its
name (``os.replace`` is atomic), so a reader or a crash never sees half a file; on any
error the temp file is removed and an old file under that name is left untouched.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["umask", "atomic_writer", "atomic_write_text", "fsync_dir", "check_writable_folder"]


def umask() -> int:
    """The process umask, read without changing it where Linux allows (else set and restored)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_writer(path, mode: str = "wb", *, suffix: str = ".tmp", encoding: str | None = None):
    """Open a temp file beside ``path``; rename it onto ``path`` on success, delete it on error.

    The file gets the permissions a plain ``open`` would give (``0o666`` less the umask;
    ``mkstemp`` alone makes ``0o600``).

    Yields:
        ``(file, temp_path)``.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=folder)
    try:
        os.chmod(tmp, 0o666 & ~umask())
        with os.fdopen(fd, mode, encoding=encoding, **({"newline": ""} if "b" not in mode else {})) as f:
            yield f, Path(tmp)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path`` as a Path."""
    with atomic_writer(path, "w", encoding="utf-8") as (f, _):
        f.write(text)
    return Path(path)


def fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable; not every platform can open a directory."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_writable_folder(path, what: str) -> Path:
    """Check that ``path`` can be created: its folder exists, is a folder, and is writable.

    Args:
        path: the file to be written.
        what: the start of the message, e.g. ``"cannot save to"``.

    Returns:
        ``path`` as a Path.

    Raises:
        FileNotFoundError: the folder does not exist.
        NotADirectoryError: the "folder" is a file.
        PermissionError: the folder is not writable.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise FileNotFoundError(f"{what} {path}: folder {folder} does not exist; create it first.")
    if not folder.is_dir():
        raise NotADirectoryError(f"{what} {path}: {folder} is a file, not a folder.")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"{what} {path}: folder {folder} is not writable.")
    return path
