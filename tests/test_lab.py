"""cnnlab.lab and cnnlab.lab.commands: every demo runs headless and writes real pictures, the toys
train to 100% held-out accuracy, the HTML report is self-contained, the commands work."""
import argparse
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from cnnlab.lab import commands as lab_cli, demos as lab

#: pixel sizes (width, height) of some figures: figure inches x 100 dpi
EXPECTED_SIZES = {"convolution_step.png": (1500, 410), "relu.png": (1300, 420), "pooling.png": (1300, 440),
                  "pipeline.png": (1495, 500), "params.png": (1600, 520), "equivariance.png": (1700, 740),
                  "ox_curves.png": (1100, 400)}


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab")
    return out, {name: lab.run_demo(name, out, print_fn=None) for name in lab.DEMOS}


def test_every_demo_writes_non_empty_pictures(demos):
    out, results = demos
    assert set(results) == {"convolution", "kernels", "relu", "pooling", "pipeline", "ox", "lines", "equivariance",
                            "sparse-matrix", "receptive-field", "params", "batchnorm", "dropout"}
    for name, result in results.items():
        assert result["files"], name
        for path in result["files"]:
            with Image.open(path) as im:
                im.load()
                w, h = im.size
                assert 300 <= w <= 4000 and 150 <= h <= 4000, (path, im.size)
                assert np.asarray(im.convert("L")).std() > 5, f"{path} looks blank"
                base = path.rsplit("/", 1)[-1]
                if base in EXPECTED_SIZES:
                    assert im.size == EXPECTED_SIZES[base], path


def test_the_gifs_have_several_frames(demos):
    out, _ = demos
    with Image.open(out / "convolution.gif") as im:
        assert im.n_frames == 25  # one per position of the 7x7 edge image's 5x5 feature map
    with Image.open(out / "convolution_o.gif") as im:
        assert im.n_frames == 16  # one per position of the O's 4x4 feature map
    with Image.open(out / "convolution_mnist.gif") as im:
        assert im.n_frames == 28


def test_demo_numbers(demos):
    _, r = demos
    conv = r["convolution"]["numbers"]
    assert conv["step_sum"] == pytest.approx(conv["step_value"], abs=1e-12)
    assert conv["step_value"] == 30 and conv["feature_map"] == [[0, 30, 30, 0, 0]] * 5
    assert conv["ox_feature_maps"]["X"][1] == [1, 2, 2, 1]
    assert conv["output_sizes"] == {"6,3,1,0": 4, "28,3,1,1": 28, "28,2,2,0": 14, "7,3,2,0": 3, "224,3,1,1": 224}
    assert r["relu"]["numbers"]["min_after"] == 0 and r["relu"]["numbers"]["negatives_before"] > 0
    pool = r["pooling"]["numbers"]
    a = np.array(pool["input"])
    assert np.array_equal(np.array(pool["max"]), a.reshape(4, 2, 4, 2).max(axis=(1, 3)))
    assert np.allclose(np.array(pool["avg"]), a.reshape(4, 2, 4, 2).mean(axis=(1, 3)))
    pipe = r["pipeline"]["numbers"]
    assert pipe["shapes"]["2: max pool"] == [2, 2] and pipe["shapes"]["3: flatten"] == [1, 4]
    assert pipe["ring_flat"] == {"O": [2, 2, 2, 2], "X": [2, 2, 2, 2]}  # the tutorial's ring cannot tell them apart
    assert pipe["flat"]["O"] != pipe["flat"]["X"]  # the trained filter can
    assert pipe["probabilities"]["O"][0] > 0.5 and pipe["probabilities"]["X"][1] > 0.5
    # flatten.png: the tutorial's X through the ring (bias -2), the diagonal edge and a "\" line (bias -1)
    assert pipe["flatten_x"] == [2, 2, 2, 2, 0, 2, 2, 2, 2, 0, 0, 2]
    ox = r["ox"]["numbers"]  # ox_predictions.png etc. draw the tutorial's letters, unshifted and moved 1 px
    assert ox["shown_labels"] == [0] * 8 + [1] * 8
    shown = np.array(ox["shown_probabilities"])
    assert shown.shape == (16, 2) and np.allclose(shown.sum(axis=1), 1)
    assert shown[0].argmax() == 0 and shown[8].argmax() == 1  # the unshifted O and X are recognised
    assert ox["shown_correct"] == int((shown.argmax(axis=1) == ox["shown_labels"]).sum())
    for result in r["sparse-matrix"]["numbers"].values():
        assert result["forward_error"] < 1e-12 and result["backward_error"] < 1e-12
    assert r["sparse-matrix"]["numbers"]["6x6 padding 0"]["weight_slots"] == 144
    eq = r["equivariance"]["numbers"]
    assert eq["conv_max_error"] < 1e-12 and eq["pool_unchanged_fraction"] > eq["conv_unchanged_fraction"]
    assert r["receptive-field"]["numbers"]["three_3x3_convs"] == [1, 3, 5, 7]
    assert r["receptive-field"]["numbers"]["convs_with_pooling"] == [1, 3, 4, 8, 10, 18]
    params = r["params"]["numbers"]
    assert [v["dense"] for v in params.values()] == [78_500, 100_480, 150_529_000, 6_291_968]
    assert [v["conv"] for v in params.values()] == [None, 160, 1_792, 4_864]
    for toy in ("ox", "lines"):
        n = r[toy]["numbers"]
        assert n["test_accuracy"] == 1.0
        assert n["pixel_pre_activation"] == pytest.approx(n["pixel_model_value"], rel=1e-5, abs=1e-6)


def test_run_demo_prints_and_rejects_unknown_names(tmp_path, capsys):
    lab.run_demo("params", tmp_path)
    assert "150,529,000" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown demo 'nope'"):
        lab.run_demo("nope", tmp_path)


# ----- toys ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ox", "lines"])
def test_toys_reach_100_percent_on_held_out_examples(name):
    model, history, acc = lab.train_toy(name, seed=0)
    (x, _), (xt, yt) = lab.toy_data(name, seed=0)
    assert acc == 1.0
    assert np.array_equal(model.predict(xt).argmax(axis=1), yt)
    assert not any(np.array_equal(a, b) for a, b in zip(x[:20], xt[:20]))  # held out: other examples
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_train_toy_is_reproducible():
    m1, _, _ = lab.train_toy("ox", seed=0)
    m2, _, _ = lab.train_toy("ox", seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    with pytest.raises(ValueError, match="unknown toy"):
        lab.train_toy("dogs")


# ----- visualize and report ---------------------------------------------------------------------------------------
class _Imgs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs, self.links = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.srcs.append(attrs.get("src", ""))
        if tag in ("link", "script") or (tag == "a" and attrs.get("href")):
            self.links.append(tag)


def test_write_report_is_self_contained_html(tmp_path):
    model, history, _ = lab.train_toy("lines")
    _, (xt, yt) = lab.toy_data("lines")
    path = lab.write_report(tmp_path / "r", model, history, xt, yt, {"toy": "lines", "seed": 0, "lr": 0.02},
                            class_names=("vertical", "horizontal"))
    page = path.read_text()
    parser = _Imgs()
    parser.feed(page)
    parser.close()
    assert len(parser.srcs) == 7 and all(s.startswith("data:image/png;base64,iVBOR") for s in parser.srcs)
    assert parser.links == [] and "http" not in page
    assert "Test accuracy: 100.00% (200 of 200)" in page
    assert "<th>lr</th><td>0.02</td>" in page and "Total params: 50" in page
    with pytest.raises(ValueError, match="same, nonzero number"):
        lab.write_report(tmp_path, model, history, xt, yt[:3])


def test_visualize_writes_four_pictures(tmp_path):
    model, _, _ = lab.train_toy("ox")
    _, (xt, yt) = lab.toy_data("ox")
    result = lab.visualize(model, xt[0], tmp_path, class_names=("O", "X"), label=int(yt[0]))
    assert [p.rsplit("/", 1)[-1] for p in result["files"]] == ["feature_maps.png", "filters.png",
                                                              "probabilities.png", "saliency.png"]
    assert result["numbers"]["predicted"] == yt[0]
    assert sum(result["numbers"]["probabilities"]) == pytest.approx(1.0)


# ----- command line -------------------------------------------------------------------------------------------
def _parser():
    parser = argparse.ArgumentParser(prog="cnnlab")
    lab_cli.add_commands(parser.add_subparsers(dest="command"))
    return parser


def test_lab_commands_parse():
    args = _parser().parse_args(["explain", "m.npz", "mnist:3", "--layer", "3", "--at", "7,5", "--channel", "2"])
    assert (args.layer, args.at, args.channel, args.func) == (3, (7, 5), 2, lab_cli.cmd_explain)
    args = _parser().parse_args(["demo", "all", "--out", "x"])
    assert args.name == "all" and str(args.out) == "x"
    with pytest.raises(argparse.ArgumentTypeError, match="I,J"):
        lab_cli.parse_position("7")
    with pytest.raises(SystemExit):
        _parser().parse_args(["demo", "nope"])


def test_lab_commands_run_through_the_main_cli(tmp_path, capsys):
    from cnnlab.cli import main

    assert main(["explain", "ox_cnn", "ox:0", "--layer", "0", "--at", "1,1", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "explain_pixel.png").is_file() and "model's own output" in capsys.readouterr().out
    assert main(["visualize", "lines_cnn", "lines:1", "--out", str(tmp_path / "v")]) == 0
    assert len(list((tmp_path / "v").glob("*.png"))) == 4
    capsys.readouterr()
    for argv, message in (
        (["explain", "ox_cnn", "ox:0", "--layer", "1", "--at", "0,0"], "layer 1 is ReLU"),
        (["explain", "ox_cnn", "ox:0", "--layer", "0", "--at", "9,9"], "received channel 0 at (9, 9)"),
        (["explain", "ox_cnn", "ox:999", "--layer", "0", "--at", "0,0"], "test examples 0..199"),
        (["visualize", "no_such_model.npz", "ox:0"], "no model file at no_such_model.npz"),
        (["visualize", "ox_cnn", str(tmp_path / "none.png")], "no image file at"),
        (["visualize", "ox_cnn", "mnist:0"], "model takes (1, 6, 6)"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
