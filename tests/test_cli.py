"""The command line, in-process through cnnlab.cli.main(argv), plus one real ``python -m cnnlab``."""
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli import build_parser, main
from cnnlab.datasets import load_mnist
from cnnlab.models.io import load_model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One quick training run shared by the tests that need a model file."""
    out = tmp_path_factory.mktemp("run")
    rc = main(["train", "--limit", "256", "--epochs", "1", "--test-limit", "200", "--out", str(out), "--quiet"])
    assert rc == 0
    return out


def run(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def assert_one_line_error(rc, err, *fragments):
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_python_dash_m_help_lists_the_commands():
    res = subprocess.run([sys.executable, "-m", "cnnlab", "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0
    for command in ("train", "evaluate", "predict", "summary", "examples:"):
        assert command in res.stdout


def test_importing_the_cli_leaves_matplotlib_for_the_pictures():
    # the console script imports cnnlab.cli; so does each of `cnnlab bench`'s spawned workers,
    # whose peak memory is measured: matplotlib (~30 MB, ~0.4 s) loads only when a run draws
    code = "import sys, cnnlab.cli; print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_every_command_has_help_with_examples(capsys):
    for command in ("train", "evaluate", "predict", "summary"):
        rc, out, _ = run(capsys, command, "--help")
        assert rc == 0 and "examples:" in out and f"cnnlab {command}" in out


def test_train_writes_model_checkpoint_history_csv_and_plot(trained, capsys):
    for name in ("model.npz", "checkpoint.npz", "history.json", "history.csv", "curves.png"):
        assert (trained / name).is_file(), name
    record = json.loads((trained / "history.json").read_text())
    assert record["model"] == "simple_cnn" and record["test"]["images"] == 200
    assert 0.0 <= record["test"]["accuracy"] <= 1.0 and len(record["epoch_seconds"]) == 1
    assert record["history"]["epoch"] == [0] and record["history"]["stop_reason"] == "completed"
    assert (trained / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert load_model(trained / "model.npz").num_parameters() == 421_642


def test_train_prints_test_accuracy(tmp_path, capsys):
    rc, out, err = run(capsys, "train", "--model", "lenet5", "--limit", "128", "--epochs", "1", "--test-limit", "100",
                       "--out", str(tmp_path), "--no-augment", "--schedule", "step")
    assert rc == 0 and "test accuracy:" in out and "on 100 images" in out
    assert "Epoch 1/1 - " in out  # one line per epoch: the output is not a terminal
    rc, out, _ = run(capsys, "train", "--model", "lenet5", "--limit", "128", "--epochs", "2", "--test-limit", "100",
                     "--out", str(tmp_path), "--no-augment", "--schedule", "step", "--resume", "--quiet")
    assert rc == 0
    record = json.loads((tmp_path / "history.json").read_text())
    assert record["history"]["epoch"] == [0, 1]
    assert (tmp_path / "history.csv").read_text().count("\n") == 3  # header and two epochs


def test_evaluate_prints_accuracy_per_class_and_confusion_matrix(trained, capsys):
    rc, out, _ = run(capsys, "evaluate", str(trained / "model.npz"), "--limit", "300")
    assert rc == 0
    assert "test images: 300" in out and "accuracy:" in out and "per-class accuracy:" in out
    matrix = out.split("predicted class):")[1].strip().splitlines()[1:]
    counts = np.array([[int(v) for v in row.split()[1:]] for row in matrix])
    assert counts.shape == (10, 10) and counts.sum() == 300
    (_, _), (_, y_test) = load_mnist(verify=False)
    assert counts.sum(1).tolist() == np.bincount(y_test[:300], minlength=10).tolist()


def test_predict_gives_class_and_top3_per_image(trained, tmp_path, capsys):
    (_, _), (x_test, _) = load_mnist(verify=False)
    paths = []
    for i in range(2):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(x_test[i]).save(path)
        paths.append(str(path))
    rc, out, _ = run(capsys, "predict", str(trained / "model.npz"), *paths)
    assert rc == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(paths[0] + ": ")
    assert lines[0].count("%") == 3


def test_summary_of_a_zoo_name_and_of_a_file(trained, capsys):
    rc, out, _ = run(capsys, "summary", "simple_cnn")
    assert rc == 0 and "Total params: 421,642" in out
    rc, out, _ = run(capsys, "summary", str(trained / "checkpoint.npz"))
    assert rc == 0 and "Total params: 421,642" in out and "optimizer Adam" in out


def test_user_errors_are_one_line_with_status_2(trained, tmp_path, capsys):
    bad_model = tmp_path / "bad.npz"
    bad_model.write_bytes(b"not a model")
    bad_image = tmp_path / "bad.png"
    bad_image.write_text("not an image")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cases = [
        (["evaluate", str(tmp_path / "missing.npz")], "no model file"),
        (["evaluate", str(bad_model)], "bad.npz"),
        (["predict", str(trained / "model.npz"), str(bad_image)], "bad.png"),
        (["predict", str(trained / "model.npz"), str(tmp_path / "none.png")], "no image file"),
        (["summary", "no_such_model"], "neither a zoo model"),
        (["train", "--epochs", "-1"], "--epochs"),
        (["train", "--lr", "abc"], "--lr"),
        (["train", "--model", "ox_cnn", "--out", str(tmp_path / "ox")], "(1, 6, 6)"),
        (["train", "--out", str(blocker / "sub"), "--limit", "10"], "not writable"),
        (["train", "--resume", str(tmp_path / "nope.npz"), "--out", str(tmp_path / "r")], "no checkpoint"),
        (["frobnicate"], "invalid choice"),
        ([], "choose a command"),
    ]
    for argv, fragment in cases:
        rc, _, err = run(capsys, *argv)
        assert_one_line_error(rc, err, fragment)


def test_plugin_modules_add_their_commands(monkeypatch, capsys):
    def add_commands(sub):
        p = sub.add_parser("hello", help="say hello")
        p.set_defaults(func=lambda args: print("hello") or 0)

    monkeypatch.setitem(sys.modules, "cnnlab.bench", types.SimpleNamespace(add_commands=add_commands))
    assert "hello" in build_parser().format_help()
    rc, out, _ = run(capsys, "hello")
    assert rc == 0 and out == "hello\n"


# ----- a newcomer's first hour (issue 10) -------------------------------------------------------------------
def test_doctor_warnings_are_clean_lines_between_bar_updates(tmp_path, capsys):
    rc, out, err = run(capsys, "train", "--optimizer", "sgd", "--lr", "100", "--batch-size", "64", "--limit", "512", "--epochs", "1",
                       "--test-limit", "50", "--out", str(tmp_path), "--verbose", "1", "--no-augment")
    assert rc in (0, 1)
    doctor_lines = [line for line in err.splitlines() if "training doctor (" in line]
    assert any("training doctor (exploding_loss)" in line for line in doctor_lines), err
    for line in doctor_lines:
        assert line.lstrip("\r").startswith("training doctor ("), line  # not spliced into the bar
    assert "doctor.py:" not in err and "DoctorWarning" not in err and "self._check" not in err


def test_train_to_a_file_prints_one_line_per_epoch_and_singular_epoch(tmp_path, capsys):
    rc, out, err = run(capsys, "train", "--model", "lenet5", "--limit", "128", "--epochs", "1", "--test-limit",
                       "50", "--out", str(tmp_path), "--no-augment")
    assert rc == 0
    assert ": 1 epoch, batch" in out and "1 epochs" not in out
    epoch_lines = [line for line in out.splitlines() if line.startswith("Epoch 1/1 - ")]
    assert len(epoch_lines) == 1 and "accuracy=" in epoch_lines[0]
    assert "\r" not in err and "\r" not in out  # no progress bar when not on a terminal


def test_verbose_option_and_quiet(tmp_path, capsys):
    args = ["train", "--model", "lenet5", "--limit", "128", "--epochs", "1", "--test-limit", "50", "--out",
            str(tmp_path), "--no-augment"]
    rc, out, err = run(capsys, *args, "--verbose", "1")
    assert rc == 0 and "Epoch 1/1" in err and "accuracy=" in err and " acc=" not in err
    for quiet in (["--verbose", "0"], ["--quiet"]):
        rc, out, err = run(capsys, *args, *quiet)
        assert rc == 0 and out.splitlines() == [line for line in out.splitlines() if line.startswith("test accuracy")]
        assert "Epoch" not in err + out
    rc, _, err = run(capsys, *args, "--verbose", "3")
    assert rc == 2 and "invalid choice: 3" in err


def test_resume_command_repeats_the_options():
    from cnnlab.cli.train import _resume_command

    assert _resume_command(["train", "--lr", "0.5", "--resume", "--out", "r x"], "r x/checkpoint.npz") == \
        "cnnlab train --lr 0.5 --out 'r x' --resume 'r x/checkpoint.npz'"
    assert _resume_command(["train", "--resume=old.npz", "--epochs", "3"], "c.npz") == \
        "cnnlab train --epochs 3 --resume c.npz"
    assert _resume_command(["train", "--resume", "old.npz"], "c.npz") == "cnnlab train --resume c.npz"


def test_model_fit_shows_its_real_options():
    import inspect
    import pydoc

    from cnnlab.models import Sequential
    from cnnlab.training import fit

    ours = list(inspect.signature(Sequential.fit).parameters.values())[1:]  # without self
    theirs = list(inspect.signature(fit).parameters.values())[1:]  # without model
    assert [(p.name, p.default) for p in ours] == [(p.name, p.default) for p in theirs]
    text = pydoc.render_doc(Sequential.fit, renderer=pydoc.plaintext)  # what help(model.fit) shows
    signature_line = text.split("\n\n")[1].split("\n")[0]
    assert "**kwargs" not in text and signature_line.startswith("fit(self, x, y, epochs")
    for name in [p.name for p in theirs][2:]:
        assert f" {name}" in signature_line and f"{name}: " in Sequential.fit.__doc__, name


@pytest.mark.skipif(os.environ.get("CNNLAB_NO_NUMBA", "") not in ("", "0"),
                    reason="the warm-up reports where Numba caches the kernels: with CNNLAB_NO_NUMBA=1 there is no cache")
def test_train_announces_the_kernel_compile_before_the_first_epoch(tmp_path, capsys, monkeypatch):
    from cnnlab.engines import runtime as backend

    answers = iter([["im2col"], ["im2col"], []])  # cold before the warm-up (asked twice), warm after it
    monkeypatch.setattr(backend, "cold_kernels", lambda: next(answers, []))
    monkeypatch.setattr(backend, "use_numba", lambda: True)
    rc, out, _ = run(capsys, "train", "--model", "lenet5", "--limit", "64", "--epochs", "1", "--test-limit", "20",
                     "--out", str(tmp_path), "--no-augment", "--verbose", "2")
    assert rc == 0
    assert out.index(backend.WARMUP_NOTICE) < out.index("kernels ready in") < out.index("Epoch 1/1 - ")


def _report_tables(path):
    """The report's tables as {h2 title before it: {row header: cell}}, and its CSS, via html.parser."""
    from html.parser import HTMLParser

    class Tables(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tables, self.css, self._h2, self._in, self._row, self._text = {}, "", "", None, [], None

        def handle_starttag(self, tag, attrs):
            if tag in ("h2", "th", "td", "style"):
                self._in, self._text = tag, ""
            if tag == "table":
                self.tables.setdefault(self._h2, {})

        def handle_data(self, data):
            if self._in is not None:
                self._text += data

        def handle_endtag(self, tag):
            if tag != self._in:
                return
            if tag == "h2":
                self._h2 = self._text
            elif tag == "style":
                self.css = self._text
            elif tag == "th":
                self._row = [self._text]
            elif tag == "td":
                self.tables.setdefault(self._h2, {})[self._row[0]] = self._text
            self._in = None

    parser = Tables()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.tables, parser.css


def test_report_shows_resolved_paths_real_values_and_wraps_text(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, _, _ = run(capsys, "train", "--model", "lenet5", "--limit", "128", "--epochs", "1", "--test-limit", "50",
                   "--lr", "3.81e-5", "--schedule", "none", "--no-augment", "--quiet")
    assert rc == 0
    tables, css = _report_tables(tmp_path / "runs" / "lenet5" / "report.html")
    settings = tables["Run settings"]
    assert settings["output folder"] == str((tmp_path / "runs" / "lenet5").resolve())
    assert settings["initial learning rate"] == "3.81e-05" and settings["epochs"] == "1"
    assert settings["training images"] == "122" and settings["test images"] == "50"
    for internal in ("command", "quiet", "verbose", "resume", "out", "func", "argv", "limit"):
        assert internal not in settings, internal
    final = tables["Training curves"]
    assert final["lr"] == "3.81e-05" and float(final["loss"]) > 0  # not "0.0000"
    assert "white-space:pre-wrap" in css and "overflow-wrap:anywhere" in css  # long lines wrap, never cut off


def test_predict_warns_on_a_blank_picture_and_near_chance(trained, tmp_path, capsys):
    from cnnlab.models.zoo import simple_cnn

    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((80, 60), 170, np.uint8)).save(blank)
    rc, out, err = run(capsys, "predict", str(trained / "model.npz"), str(blank))
    assert rc == 0 and out.startswith(f"{blank}: ")
    assert "warning:" in err and "no ink found" in err and str(blank) in err
    unsure = simple_cnn(seed=0)
    last = unsure.layers[-1]
    last.weight.data[...] = 0  # every class scores 0: probabilities 10% each
    last.bias.data[...] = 0
    unsure.save(tmp_path / "unsure.npz")
    (_, _), (x_test, _) = load_mnist()
    digit = tmp_path / "digit.png"
    Image.fromarray(255 - x_test[0]).save(digit)  # dark ink on white
    rc, out, err = run(capsys, "predict", str(tmp_path / "unsure.npz"), str(digit))
    assert rc == 0 and "10.0%" in out
    assert "the model is unsure (top class 10.0%, chance is 10%)" in err and "no ink" not in err
