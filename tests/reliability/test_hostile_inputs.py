"""Issue 11, classes 1-4: hostile archives, image formats, architectures implying huge
computations, and count arguments beyond what the machine has."""
from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.models import zoo
from cnnlab.cli import main as cli_main
from cnnlab.datasets import load_image, load_image_folder
from cnnlab.datasets.images import ALLOWED_FORMATS, open_untrusted_image
from cnnlab.models.io import ModelFileError, load_model, read_archive

ROOT = Path(__file__).resolve().parents[2]


def _load_fuzzer():
    spec = importlib.util.spec_from_file_location("cnnlab_fuzz_files_2", ROOT / "scripts" / "fuzz_files.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fuzz = _load_fuzzer()


def _header_npy(path):
    with zipfile.ZipFile(path) as zf:
        return zf.read("__cnnlab__.npy")


# ===== 1. archive budget ==================================================================================
@pytest.mark.parametrize("names", ["junk", "model"])
def test_zip_bomb_split_over_many_entries_is_refused_before_inflating(tmp_path, names):
    """20 entries of 15 MB zeros (each under the per-entry guard), 300 MB inflated from ~300 KB."""
    good = zoo.ox_cnn().save(tmp_path / "good.npz")
    bomb = tmp_path / "bomb.npz"
    bomb.write_bytes(fuzz.split_bomb(_header_npy(good), 20, 15 << 20,
                                     (lambda i: f"junk/{i}") if names == "junk" else (lambda i: f"model/{i}.weight")))
    assert bomb.stat().st_size < 400_000
    fuzz.reset_peak_rss()
    before = fuzz.current_rss_kb()
    with fuzz.address_space_limit(1 << 30), pytest.raises(ModelFileError, match=r"zip bomb|unexpected keys"):
        read_archive(bomb)
    assert fuzz.peak_rss_kb() - before < 40 * 1024  # nothing was inflated


def test_split_bomb_with_listed_names_is_refused_by_the_whole_archive_ratio(tmp_path):
    good = zoo.ox_cnn().save(tmp_path / "good.npz")
    header = json.loads(np.load(io.BytesIO(_header_npy(good))).tobytes().decode())
    header["arrays"] = header["arrays"] + [f"extra/{i}" for i in range(20)]
    hnpy = fuzz.npy_bytes(np.frombuffer(json.dumps(header).encode(), np.uint8))
    bomb = tmp_path / "bomb.npz"
    bomb.write_bytes(fuzz.split_bomb(hnpy, 20, 15 << 20, lambda i: f"extra/{i}"))
    with pytest.raises(ModelFileError, match=r"compressed entries inflate .* more than 100 times"):
        read_archive(bomb)


def test_entry_count_and_unnamed_entries_are_refused(tmp_path):
    good = zoo.ox_cnn().save(tmp_path / "good.npz")
    members = fuzz.read_members(good.read_bytes())
    many = tmp_path / "many.npz"
    many.write_bytes(fuzz.build_zip(members + [(f"x/{i}.npy", fuzz.npy_bytes(np.zeros(1, np.uint8)))
                                               for i in range(10_001)]))
    with pytest.raises(ModelFileError, match=r"holds 10\d\d\d entries; at most 10000"):
        read_archive(many)
    for name in ("junk.npy", "model/7.weight.npy"):
        bad = tmp_path / "bad.npz"
        bad.write_bytes(fuzz.build_zip(members + [(name, fuzz.npy_bytes(np.zeros(3, np.float32)))]))
        with pytest.raises(ModelFileError, match=rf"unexpected keys: '{name[:-4]}' is not"):
            read_archive(bad)


def test_archive_fuzzer_short():
    stats, _ = fuzz.run(cases=120, seed=0, categories=("archive",), timeout=20)
    (s,) = stats
    assert s.tried == 120 and s.crashes == 0, s.crash_examples
    assert s.clean > 80 and s.max_rss_growth_kb < (200 << 10)


# ===== 2. image formats ===================================================================================
def _fake_gs(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    marker = tmp_path / "GS_CALLED"
    gs = bindir / "gs"
    gs.write_text(f"#!/bin/sh\necho \"$@\" >> '{marker}'\nexit 0\n")
    gs.chmod(0o755)
    return bindir, marker


def test_postscript_named_png_never_starts_ghostscript_in_predict(tmp_path):
    bindir, marker = _fake_gs(tmp_path)
    model = zoo.simple_cnn(seed=0).save(tmp_path / "m.npz")
    fake = tmp_path / "digit.png"
    fake.write_bytes(fuzz.EPS)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "cnnlab", "predict", str(model), str(fake)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "PostScript/EPS, not an allowed format" in proc.stderr and "digit.png" in proc.stderr
    assert not marker.exists(), f"an external program ran: {marker.read_text()}"
    # the fake gs is live: Pillow's own opener does call it for this file
    code = "from PIL import Image; import sys\ntry:\n Image.open(sys.argv[1]).load()\nexcept Exception: pass"
    subprocess.run([sys.executable, "-c", code, str(fake)], env=env, timeout=60)
    assert marker.exists()


@pytest.mark.parametrize("kind", ["eps", "ps", "eps_binary", "pdf", "svg"])
def test_refused_formats_in_every_opener(tmp_path, kind):
    _, refused = fuzz.format_seed_files()
    data = refused[kind]
    folder = tmp_path / "root" / "a"
    folder.mkdir(parents=True)
    (folder / "x.png").write_bytes(data)
    for call in (lambda: load_image(folder / "x.png"), lambda: load_image_folder(tmp_path / "root"),
                 lambda: open_untrusted_image(data), lambda: open_untrusted_image(io.BytesIO(data))):
        with pytest.raises(ValueError, match=r"not an allowed format|not an image cnnlab knows"):
            call()


def test_formats_pillow_reads_but_cnnlab_refuses(tmp_path):
    _, refused = fuzz.format_seed_files()
    opened = []
    for name, data in refused.items():
        try:
            Image.open(io.BytesIO(data)).load()  # Pillow alone opens these...
        except Exception:  # noqa: BLE001 - write-only formats (PDF) and the PostScript ones need gs
            continue
        opened.append(name)
        with pytest.raises(ValueError, match=r"not an allowed format|not an image cnnlab knows"):
            open_untrusted_image(data)  # ...cnnlab does not
    assert len(opened) >= 5, opened


def test_every_allowed_format_opens_from_path_bytes_and_file(tmp_path):
    allowed, _ = fuzz.format_seed_files()
    seen = set()
    for name, data in allowed.items():
        path = tmp_path / f"{name}.bin"  # the extension does not matter: the content does
        path.write_bytes(data)
        for source in (path, data, io.BytesIO(data)):
            img = open_untrusted_image(source)
            assert img.size[0] > 0
        seen.add(Image.open(io.BytesIO(data)).format)
        assert load_image(path, image_size=8).shape == (8, 8)
    assert seen == set(ALLOWED_FORMATS)


def test_pixel_count_is_bounded_before_decoding():
    with pytest.raises(ValueError, match=r"pixels; at most 1,000 are read"):
        open_untrusted_image(fuzz.huge_png(100, 100), max_pixels=1000)


def test_formats_fuzzer_short():
    stats, _ = fuzz.run(cases=150, seed=0, categories=("formats",), timeout=20)
    (s,) = stats
    assert s.tried == 150 and s.crashes == 0, s.crash_examples


# ===== 3. architectures implying huge computations ========================================================
def _with_config(tmp_path, change):
    """A tiny fully-convolutional model (its output size follows its input: any padding is
    consistent), saved, then its architecture changed in the file."""
    from cnnlab.layers import Conv2d, Flatten
    from cnnlab.models import Sequential

    model = Sequential([Conv2d(1, 2, 3, rng=0), Flatten()], input_shape=(1, 3, 3), name="tiny_fcn")
    path = model.save(tmp_path / "m.npz")
    members = fuzz.read_members(path.read_bytes())
    out = []
    for name, data in members:
        if name == "__cnnlab__.npy":
            header = json.loads(np.load(io.BytesIO(data)).tobytes().decode())
            change(header["model"])
            data = fuzz.npy_bytes(np.frombuffer(json.dumps(header).encode(), np.uint8))
        out.append((name, data))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(fuzz.build_zip(out))
    return bad


def test_huge_padding_or_input_is_refused_at_load(tmp_path):
    def pad(cfg):
        cfg["layers"][0]["config"]["padding"] = 30_000

    def side(cfg):
        cfg["input_shape"] = [1, 1048575, 1048575]

    for change, match in ((pad, r"by layer 0 \(Conv2d"), (side, r"inputs of shape \(1, 1048575, 1048575\)")):
        bad = _with_config(tmp_path, change)
        assert bad.stat().st_size < 300_000
        with fuzz.address_space_limit(1 << 30), pytest.raises(ModelFileError, match=match + r".*budget"):
            load_model(bad)


@pytest.mark.parametrize("command", ["summary", "evaluate", "predict"])
def test_cli_refuses_huge_architecture_in_one_line(tmp_path, capsys, command):
    bad = _with_config(tmp_path, lambda cfg: cfg["layers"][0]["config"].__setitem__("padding", 30_000))
    img = tmp_path / "d.png"
    Image.new("L", (28, 28)).save(img)
    argv = [command, str(bad)] + ([str(img)] if command == "predict" else [])
    code = cli_main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "budget" in err, err


def test_model_without_input_shape_is_checked_on_its_first_data():
    from cnnlab.layers import Conv2d, Flatten
    from cnnlab.models import Sequential

    model = Sequential([Conv2d(1, 8, 3, padding=30_000, rng=0), Flatten()])
    with pytest.raises(ValueError, match=r"by layer 0 \(Conv2d.*budget"):
        model.predict(np.zeros((1, 1, 28, 28), np.float32))


def test_memory_error_in_any_command_is_one_line(monkeypatch, capsys, tmp_path):
    import cnnlab.cli as cli

    def boom(args):
        raise MemoryError()

    monkeypatch.setattr(cli, "cmd_summary", boom)
    parser_build = cli.build_parser

    def build():
        p = parser_build()
        p._subparsers._group_actions[0].choices["summary"].set_defaults(func=boom)  # noqa: SLF001
        return p

    monkeypatch.setattr(cli, "build_parser", build)
    assert cli.main(["summary", "lenet5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not enough memory" in err


def test_architecture_fuzzer_short():
    stats, _ = fuzz.run(cases=120, seed=0, categories=("architecture",), timeout=20)
    (s,) = stats
    assert s.tried == 120 and s.crashes == 0, s.crash_examples


# ===== 4. count arguments bounded =========================================================================
@pytest.mark.parametrize("argv, match", [
    (["bench", "--threads", "1000000000"], r"--threads: expected an integer in \[1, \d+\] \(this machine has"),
    (["bench", "--repeats", "10000000"], r"--repeats: expected an integer in \[1, 1000\]"),
    (["train", "--batch-size", "100000000"], r"--batch-size: expected an integer in \[1, 60000\]"),
    (["train", "--limit", "99999999999"], r"--limit: expected an integer in \[1, 60000\]"),
    (["train", "--epochs", "1000000000"], r"--epochs: expected an integer in \[1, 10000\]"),
    (["evaluate", "m.npz", "--batch-size", "100000000"], r"--batch-size: expected an integer in \[1, 10000\]"),
    (["predict", "m.npz", "x.png", "--top", "100000000"], r"--top: expected an integer in \[1, 1000\]"),
])
def test_count_arguments_are_bounded(argv, match, capsys):
    assert cli_main(argv) == 2
    import re

    assert re.search(match, capsys.readouterr().err)


def test_restore_with_an_optimizer_name_that_is_not_a_string(tmp_path):
    """Found by the long fuzz run: a list as the optimizer's name raised TypeError (unhashable)."""
    from cnnlab.training.checkpoints import restore, save_training_state

    model = zoo.ox_cnn(seed=0).compile("adam")
    path = save_training_state(tmp_path / "m.npz", model, model.optimizer, epoch=1)
    members = fuzz.read_members(path.read_bytes())
    out = []
    for name, data in members:
        if name == "__cnnlab__.npy":
            header = json.loads(np.load(io.BytesIO(data)).tobytes().decode())
            header["optimizer"]["state"]["name"] = ["adam"]
            data = fuzz.npy_bytes(np.frombuffer(json.dumps(header).encode(), np.uint8))
        out.append((name, data))
    path.write_bytes(fuzz.build_zip(out))
    with pytest.raises(ModelFileError, match="unknown optimizer"):
        restore(path)
