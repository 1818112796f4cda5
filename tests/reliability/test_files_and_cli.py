"""Issue 11, items 10-15: saving never makes a good file unloadable, keeps its mode and owner,
fits long names; the CLI creates nothing for a refused command, writes a run into a folder
with any name, checks --markdown first, and caps what an error quotes."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnlab.models import zoo
from cnnlab.utils.files import atomic_write_text
from cnnlab.cli import main as cli_main
from cnnlab.models.io import load_model

ROOT = Path(__file__).resolve().parents[2]


# ===== 10. reserved keys ==================================================================================
@pytest.mark.parametrize("key", ["version", "format", "model", "dtype", "arrays"])
def test_save_refuses_reserved_extra_keys_and_keeps_the_good_file(tmp_path, key):
    model = zoo.ox_cnn(seed=0)
    path = model.save(tmp_path / "m.npz")
    good = path.read_bytes()
    with pytest.raises(ValueError, match=rf"extra keys \['{key}'\] are reserved"):
        model.save(path, extra={key: 2})
    assert path.read_bytes() == good
    load_model(path)
    model.save(path, extra={"note": "fine"})  # other keys still work


# ===== 12. mode and owner kept ===============================================================================
def test_resave_keeps_mode(tmp_path):
    model = zoo.ox_cnn(seed=0)
    path = model.save(tmp_path / "m.npz")
    text = tmp_path / "notes.txt"
    atomic_write_text(text, "a")
    for p, write in ((path, lambda: model.save(path)), (text, lambda: atomic_write_text(text, "b"))):
        os.chmod(p, 0o600)
        st = p.stat()
        write()
        after = p.stat()
        assert stat.S_IMODE(after.st_mode) == 0o600
        assert (after.st_uid, after.st_gid) == (st.st_uid, st.st_gid)
        os.chmod(p, 0o640)
        write()
        assert stat.S_IMODE(p.stat().st_mode) == 0o640


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another owner needs root")
def test_resave_keeps_owner_when_root(tmp_path):
    model = zoo.ox_cnn(seed=0)
    path = model.save(tmp_path / "m.npz")
    os.chown(path, 12345, 23456)
    model.save(path)
    assert (path.stat().st_uid, path.stat().st_gid) == (12345, 23456)


# ===== 13. long names ========================================================================================
@pytest.mark.parametrize("length", [250, 255])
def test_longest_legal_names_can_be_saved(tmp_path, length):
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    name = ("m" * limit)[: min(length, limit) - 4] + ".npz"
    model = zoo.ox_cnn(seed=0)
    path = model.save(tmp_path / name)
    load_model(path)
    atomic_write_text(tmp_path / name.replace(".npz", ".txt"), "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, name.replace(".npz", ".txt")])


def test_temp_name_of_a_multibyte_name_stays_within_the_limit(tmp_path):
    name = "é" * 125 + ".npz"  # 254 bytes in UTF-8
    path = zoo.ox_cnn(seed=0).save(tmp_path / name)
    assert path.exists() and len(list(tmp_path.iterdir())) == 1


# ===== 11. a refused train creates nothing ========================================================================
@pytest.mark.parametrize("extra", [["--resume", "missing.npz"], ["--momentum", "0.5"], ["--allow-change", "lr"]])
def test_refused_train_creates_no_folder(tmp_path, extra, capsys):
    out = tmp_path / "a" / "b"
    assert cli_main(["train", "--out", str(out), "--limit", "64", "--epochs", "1", *extra]) == 2
    assert not (tmp_path / "a").exists()


# ===== 14. a folder name that is not UTF-8 ======================================================================
def test_report_and_history_written_into_a_non_utf8_folder(tmp_path, capsys):
    out = Path(os.fsdecode(os.fsencode(str(tmp_path)) + b"/run-\xff\xfe"))
    code = cli_main(["train", "--model", "lenet5", "--limit", "64", "--test-limit", "32", "--epochs", "1",
                     "--out", str(out), "--quiet", "--schedule", "none"])
    assert code == 0, capsys.readouterr().err
    assert {"model.npz", "report.html", "history.json"} <= {p.name for p in out.iterdir()}
    assert "run-\ufffd\ufffd" in (out / "report.html").read_text(encoding="utf-8")


def test_text_that_utf8_cannot_encode_names_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"cannot write .*notes.txt.*UTF-8 cannot encode"):
        atomic_write_text(tmp_path / "notes.txt", "bad \udcff")
    assert list(tmp_path.iterdir()) == []


# ===== 15. bench --markdown first, Ctrl-C early, capped messages ==================================================
def test_bench_markdown_path_is_checked_before_the_benchmark(tmp_path, capsys, monkeypatch):
    import cnnlab.bench as bench

    def never(*a, **k):
        raise AssertionError("the benchmark ran")

    monkeypatch.setattr(bench, "run_vs_torch", never)
    monkeypatch.setattr(bench, "run_ladder", never)
    assert cli_main(["bench", "--quick", "--markdown", str(tmp_path / "missing" / "x.md")]) == 2
    assert "cannot write --markdown" in capsys.readouterr().err
    (tmp_path / "dir.md").mkdir()
    assert cli_main(["bench", "--quick", "--markdown", str(tmp_path / "dir.md")]) == 2
    assert "it is a folder" in capsys.readouterr().err


def test_ctrl_c_while_the_parser_is_built_is_one_line(monkeypatch, capsys):
    import cnnlab.cli as cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["summary", "lenet5"]) == 130
    assert capsys.readouterr().err == "cnnlab: interrupted\n"


def test_error_messages_are_capped(tmp_path, capsys):
    bad = tmp_path / ("x" * 3000 + ".npz")[:200]
    import cnnlab.cli as cli

    long = ValueError("y" * 4_000_000)
    text = cli.one_line(long)
    assert len(text) < 1100 and text.endswith("(3,999,000 more characters cut)")
    # a hostile header value is quoted short
    from cnnlab.models.io import write_archive, ModelFileError

    path = tmp_path / "h.npz"
    write_archive(path, {}, {})
    import importlib.util, io, json, zipfile

    with zipfile.ZipFile(path) as zf:
        raw = zf.read("__cnnlab__.npy")
    header = json.loads(np.load(io.BytesIO(raw)).tobytes().decode())
    header["version"] = "v" * 4_000_000
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(json.dumps(header).encode(), np.uint8))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("__cnnlab__.npy", buf.getvalue())
    assert cli_main(["summary", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err) < 1200 and "format version 'vvvv" in err
