"""Download files safely: stream to a temporary file beside the destination, check the
transfer length and MD5, then rename into place. A failed download leaves nothing behind.

The MD5 checked is that of the file *exactly as served and saved* — for the MNIST family
that is the compressed ``.gz`` file (the checksums torchvision and the datasets' own pages
publish), not its decompressed contents.
"""
from __future__ import annotations

import hashlib
import http.client
import re
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from tqdm import tqdm

from cnnlab.utils.validation import check_real
from cnnlab.datasets.idx import atomic_writer

_CHUNK = 1 << 16
_MD5_RE = re.compile(r"[0-9a-f]{32}")


class DownloadError(OSError):
    """A download failed: unreachable server, HTTP error, timeout or truncated transfer."""


class ChecksumError(ValueError):
    """A file's MD5 checksum differs from the expected one (corrupted or tampered data)."""


def md5_bytes(data) -> str:
    """Hex MD5 of a bytes-like object.

    Example:
        >>> md5_bytes(b"")
        'd41d8cd98f00b204e9800998ecf8427e'
    """
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def md5_file(path) -> str:
    """Hex MD5 of a file's bytes as stored on disk (read in chunks)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_md5_arg(md5) -> str | None:
    if md5 is None:
        return None
    if not isinstance(md5, str) or not _MD5_RE.fullmatch(md5.lower()):
        raise ValueError(f"md5 must be a 32-character hex string or None; received {md5!r}.")
    return md5.lower()


def download(url: str, dest_path, md5: str | None = None, *, progress: bool = True, timeout: float = 30) -> Path:
    """Download ``url`` to ``dest_path``, atomically, checking length and MD5.

    The body is streamed to a temporary file in the destination folder, with a tqdm
    progress bar. When the server announced a Content-Length, the number of bytes received
    must equal it; when ``md5`` is given, the MD5 of the bytes received (the file exactly as
    served, e.g. the compressed ``.gz``) must equal it. Only then is the temporary file
    renamed onto ``dest_path``. On any failure the temporary file is deleted and
    ``dest_path`` is left as it was (not created, or unchanged).

    Args:
        url: ``http://`` or ``https://`` address.
        dest_path: file to create or replace; missing parent folders are created.
        md5: expected hex MD5 of the downloaded file, or None to skip the check.
        progress: show a progress bar (on stderr).
        timeout: seconds to wait for the connection and for each read.

    Returns:
        ``dest_path`` as a Path.

    Raises:
        ValueError: bad ``url`` scheme, ``md5`` or ``timeout``, checked before any I/O.
        DownloadError: HTTP error, unreachable host, timeout, or truncated transfer.
        ChecksumError: the downloaded file's MD5 differs from ``md5``.
    """
    md5 = _check_md5_arg(md5)
    check_real(timeout, "timeout", 0, low_inclusive=False)
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise ValueError(f"download needs an http:// or https:// URL; received {url!r}.")
    dest = Path(dest_path)
    if dest.is_dir():
        raise IsADirectoryError(f"download destination {dest} is a folder; pass a file path.")

    request = urllib.request.Request(url, headers={"User-Agent": "cnnlab (Python urllib)"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, atomic_writer(dest) as (f, _):
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.strip().isdigit() else None
            digest = hashlib.md5(usedforsecurity=False)
            received = 0
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name,
                      disable=not progress, leave=False) as bar:
                while True:
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    f.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if total is not None and received != total:
                raise DownloadError(
                    f"download of {url} was truncated: received {received} of the {total} bytes "
                    f"announced (Content-Length). Nothing was saved; try again or another mirror."
                )
            if md5 is not None and digest.hexdigest() != md5:
                raise ChecksumError(
                    f"download of {url} is corrupted: MD5 of the downloaded file is "
                    f"{digest.hexdigest()}, expected {md5}. Nothing was saved."
                )
    except urllib.error.HTTPError as e:
        raise DownloadError(f"download of {url} failed: HTTP {e.code} {e.reason}.") from e
    except urllib.error.URLError as e:
        raise DownloadError(f"could not reach {url}: {e.reason}.") from e
    except http.client.IncompleteRead as e:
        raise DownloadError(
            f"download of {url} was truncated: the connection closed after {len(e.partial)} bytes, "
            f"{e.expected} more were announced. Nothing was saved."
        ) from e
    except (TimeoutError, ConnectionError, http.client.HTTPException) as e:
        raise DownloadError(f"download of {url} failed: {type(e).__name__}: {e}.") from e
    return dest


def fetch_files(name: str, files: Mapping[str, str | None], mirrors: Sequence[str], cache_dir, *,
                progress: bool = True, timeout: float = 30) -> dict[str, Path]:
    """Make sure every file of a dataset is in ``cache_dir``, downloading missing ones.

    A file already present is kept when its MD5 (of the file as stored) matches, or when no
    MD5 is known; otherwise it is downloaded, trying ``mirrors`` in order until one succeeds.

    Args:
        name: dataset name, for messages.
        files: file name -> expected MD5 of the file as served (or None).
        mirrors: base URLs; the file's URL is ``mirror.rstrip("/") + "/" + filename``.
        cache_dir: folder the files live in (created when missing).
        progress: show progress bars.
        timeout: seconds, per connection and read.

    Returns:
        file name -> local path, for every file in ``files``.

    Raises:
        ValueError: no mirrors given.
        DownloadError: a file could not be fetched from any mirror; the message lists
            every mirror's error and how to put the file in place by hand.
    """
    if isinstance(mirrors, str) or not mirrors:
        raise ValueError(f"fetch_files needs a non-empty list of mirror URLs; received {mirrors!r}.")
    cache = Path(cache_dir)
    paths: dict[str, Path] = {}
    for filename, md5 in files.items():
        dest = cache / filename
        if dest.is_file() and (md5 is None or md5_file(dest) == md5.lower()):
            paths[filename] = dest
            continue
        errors = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + filename
            try:
                download(url, dest, md5, progress=progress, timeout=timeout)
                break
            except (DownloadError, ChecksumError) as e:
                errors.append(f"  {url}: {e}")
        else:
            raise DownloadError(
                f"could not download {name} file {filename!r} from any of {len(mirrors)} mirror(s):\n"
                + "\n".join(errors)
                + f"\nIf you have the file, copy it to {dest} (or pass the folder that holds it as path=)."
            )
        paths[filename] = dest
    return paths
