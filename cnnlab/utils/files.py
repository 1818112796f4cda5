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

__all__ = ["umask", "atomic_writer", "atomic_write_text", "fsync_dir", "check_writable_folder", "temp_prefix",
           "keep_mode_and_owner"]


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

    The file keeps the mode and owner of the file it replaces; a new file gets the permissions
    a plain ``open`` would give (``0o666`` less the umask; ``mkstemp`` alone makes ``0o600``).

    Yields:
        ``(file, temp_path)``.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=suffix, dir=folder)
    try:
        with os.fdopen(fd, mode, encoding=encoding, **({"newline": ""} if "b" not in mode else {})) as f:
            yield f, Path(tmp)
            f.flush()
            os.fsync(f.fileno())
        keep_mode_and_owner(tmp, path)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def temp_prefix(path, suffix: str = ".tmp") -> str:
    """``mkstemp`` prefix for a temp file beside ``path``: ``.<name>.``, the name cut so the
    whole temp name (prefix + 8 random characters + ``suffix``) fits the folder's name limit."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        limit = 255
    name = os.fsencode(path.name)[: max(1, limit - 10 - len(suffix))]  # "." + "." + 8 random + suffix
    return "." + os.fsdecode(name) + "."  # fsdecode round-trips a name cut inside a UTF-8 character


def keep_mode_and_owner(tmp, path) -> None:
    """Give the temp file ``tmp`` the mode and owner of the file it replaces, ``path`` (a
    re-saved 0600 file stays 0600); a new file gets the usual ``0666 & ~umask``. The owner is
    kept where the OS allows (root, or a group the user is in); otherwise it stays the user."""
    try:
        st = os.stat(path)
    except OSError:
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp creates 0600; give the usual permissions, as np.savez would
        return
    os.chmod(tmp, st.st_mode & 0o7777)
    if hasattr(os, "chown"):
        try:
            os.chown(tmp, st.st_uid, st.st_gid)
        except OSError:
            pass  # not allowed to give the file away: it keeps our user
        else:
            os.chmod(tmp, st.st_mode & 0o7777)  # chown clears set-id bits


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path`` as a Path.

    Raises:
        ValueError: ``text`` holds characters UTF-8 cannot encode (lone surrogates, e.g. from a
            file name that is not UTF-8); the message names ``path``. Nothing is written.
    """
    path = Path(path)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"cannot write {os.fsdecode(path)!a}: its text holds {err.object[err.start:err.end]!a} at "
                         f"character {err.start}, which UTF-8 cannot encode (a name that is not UTF-8?).") from None
    with atomic_writer(path) as (f, _):
        f.write(data)
    return path


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
        IsADirectoryError: ``path`` itself is a folder.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise FileNotFoundError(f"{what} {path}: folder {folder} does not exist; create it first.")
    if not folder.is_dir():
        raise NotADirectoryError(f"{what} {path}: {folder} is a file, not a folder.")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"{what} {path}: folder {folder} is not writable.")
    if path.is_dir():
        raise IsADirectoryError(f"{what} {path}: it is a folder; name a file (e.g. {path / 'model.npz'}).")
    return path
