"""Downloads from a local server on 127.0.0.1: checksums, truncation, mirrors, cleanup."""
from __future__ import annotations

import hashlib
import os
import socket

import numpy as np
import pytest

from cnnlab.datasets.download import ChecksumError, DownloadError, download, fetch_files, md5_file

BODY = np.random.default_rng(0).integers(0, 256, size=300_000, dtype=np.uint8).tobytes()  # several chunks
BODY_MD5 = hashlib.md5(BODY).hexdigest()


def test_download_success_with_md5(tmp_path, http_server):
    url = http_server.add("/data/file.bin", BODY)
    dest = tmp_path / "sub" / "file.bin"
    out = download(url, dest, BODY_MD5, progress=False, timeout=5)
    assert out == dest
    assert dest.read_bytes() == BODY
    assert os.listdir(dest.parent) == ["file.bin"]  # no temporary file left
    assert http_server.requests == ["/data/file.bin"]


def test_download_with_progress_bar_and_uppercase_md5(tmp_path, http_server, capsys):
    url = http_server.add("/f", BODY)
    download(url, tmp_path / "f", BODY_MD5.upper(), progress=True, timeout=5)
    assert md5_file(tmp_path / "f") == BODY_MD5
    err = capsys.readouterr().err  # tqdm writes to stderr
    assert "f:" in err and "/293k" in err  # named bar, sized from Content-Length


def test_download_without_md5_keeps_bytes_as_served(tmp_path, http_server):
    url = http_server.add("/x.gz", b"\x1f\x8b not really gzip")
    download(url, tmp_path / "x.gz", progress=False, timeout=5)
    assert (tmp_path / "x.gz").read_bytes() == b"\x1f\x8b not really gzip"


def test_checksum_mismatch_leaves_no_file(tmp_path, http_server):
    corrupted = bytearray(BODY)
    corrupted[1000] ^= 1
    url = http_server.add("/c.bin", bytes(corrupted))
    dest = tmp_path / "c.bin"
    with pytest.raises(ChecksumError, match=f"MD5 of the downloaded file is .*expected {BODY_MD5}"):
        download(url, dest, BODY_MD5, progress=False, timeout=5)
    assert os.listdir(tmp_path) == []


def test_truncated_transfer_leaves_no_file(tmp_path, http_server):
    url = http_server.add("/t.bin", BODY, mode="truncate")
    dest = tmp_path / "t.bin"
    with pytest.raises(DownloadError, match="truncated"):
        download(url, dest, progress=False, timeout=5)  # caught by Content-Length, even without md5
    assert os.listdir(tmp_path) == []


def test_failed_download_keeps_an_existing_file(tmp_path, http_server):
    dest = tmp_path / "keep.bin"
    dest.write_bytes(b"old contents")
    url = http_server.add("/keep.bin", BODY, mode="truncate")
    with pytest.raises(DownloadError):
        download(url, dest, progress=False, timeout=5)
    assert dest.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["keep.bin"]


def test_http_404(tmp_path, http_server):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(http_server.url("/missing"), tmp_path / "m", progress=False, timeout=5)
    assert os.listdir(tmp_path) == []


def test_unreachable_host(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match="could not reach"):
        download(f"http://127.0.0.1:{port}/x", tmp_path / "x", progress=False, timeout=5)


def test_timeout(tmp_path, http_server):
    http_server.httpd.delay = 1.0
    url = http_server.add("/slow", BODY, mode="slow")
    with pytest.raises(DownloadError):
        download(url, tmp_path / "slow", progress=False, timeout=0.2)
    assert os.listdir(tmp_path) == []


def test_arguments_checked_before_any_request(tmp_path, http_server):
    url = http_server.add("/a", BODY)
    with pytest.raises(ValueError, match="32-character hex"):
        download(url, tmp_path / "a", md5="abc")
    with pytest.raises(ValueError, match="http:// or https://"):
        download("ftp://127.0.0.1/a", tmp_path / "a")
    with pytest.raises(ValueError, match="timeout"):
        download(url, tmp_path / "a", timeout=0)
    with pytest.raises(IsADirectoryError):
        download(url, tmp_path)
    assert http_server.requests == []
    assert os.listdir(tmp_path) == []


# ----- mirrors ------------------------------------------------------------------------------
def test_fetch_files_falls_back_to_the_second_mirror(tmp_path, http_server):
    http_server.add("/second/a.bin", BODY)
    http_server.add("/second/b.bin", b"bee")
    files = {"a.bin": BODY_MD5, "b.bin": None}
    paths = fetch_files("toy", files, [http_server.url("/first/"), http_server.url("/second")],
                        tmp_path / "cache", progress=False, timeout=5)
    assert paths == {"a.bin": tmp_path / "cache" / "a.bin", "b.bin": tmp_path / "cache" / "b.bin"}
    assert paths["a.bin"].read_bytes() == BODY and paths["b.bin"].read_bytes() == b"bee"
    assert http_server.requests == ["/first/a.bin", "/second/a.bin", "/first/b.bin", "/second/b.bin"]
    assert sorted(os.listdir(tmp_path / "cache")) == ["a.bin", "b.bin"]


def test_fetch_files_skips_good_cached_files_and_replaces_bad_ones(tmp_path, http_server):
    http_server.add("/m/a.bin", BODY)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "a.bin").write_bytes(BODY)
    fetch_files("toy", {"a.bin": BODY_MD5}, [http_server.url("/m")], cache, progress=False)
    assert http_server.requests == []  # already there, checksum good: no request
    (cache / "a.bin").write_bytes(b"tampered")
    fetch_files("toy", {"a.bin": BODY_MD5}, [http_server.url("/m")], cache, progress=False)
    assert http_server.requests == ["/m/a.bin"]
    assert (cache / "a.bin").read_bytes() == BODY


def test_fetch_files_reports_every_mirror(tmp_path, http_server):
    http_server.add("/bad/a.bin", b"wrong bytes")
    mirrors = [http_server.url("/none"), http_server.url("/bad")]
    with pytest.raises(DownloadError, match="(?s)toy file 'a.bin'.*2 mirror.*HTTP 404.*MD5.*copy it to"):
        fetch_files("toy", {"a.bin": BODY_MD5}, mirrors, tmp_path, progress=False, timeout=5)
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="non-empty list of mirror"):
        fetch_files("toy", {"a.bin": None}, [], tmp_path)
    with pytest.raises(ValueError, match="non-empty list of mirror"):
        fetch_files("toy", {"a.bin": None}, "http://127.0.0.1/", tmp_path)
