"""cnnlab.bench: the benchmark machinery on tiny sizes (no timing assertions: timings are not tested)."""
import math

import pytest

from cnnlab import bench
from cnnlab.bench import flops
from cnnlab.cli import main as cli_main


@pytest.fixture(scope="module")
def tiny_result():
    cfg = bench.BenchConfig(limit=96, test_limit=64, repeats=1, batch_sizes=(32,), optimizers=("sgd", "adam"),
                            doctor_off=True, infer_batch=32, layer_batch=4, layer_iters=2, gap=0.0,
                            layers=("conv1 1->32 3x3 @28 (no dx)", "conv2+relu+pool fused", "relu @128",
                                    "bn_cnn batchnorm2d 16 @28", "adam step (421,642 params)"),
                            rgb_sizes=(8,), rgb_batch=2)
    lines = []
    return bench.run_vs_torch(cfg, log=lines.append), lines


def test_every_row_is_timed_in_both_frameworks_with_finite_ratios(tiny_result):
    result, log = tiny_result
    names = [row.name for row in result.rows]
    assert names == ["epoch b32 SGD+momentum", "epoch b32 SGD+momentum (cnnlab doctor off)", "epoch b32 Adam",
                     "epoch b32 Adam (cnnlab doctor off)", "predict 64 test images (batch 32)",
                     "conv1 1->32 3x3 @28 (no dx)", "conv2+relu+pool fused", "relu @128",
                     "bn_cnn batchnorm2d 16 @28", "adam step (421,642 params)",
                     "peak RSS after training (MB, 96 images)", flops.rgb_block_name(8),
                     f"peak RSS, {flops.rgb_block_name(8)} (MB)"]
    for row in result.rows:
        assert len(row.cnnlab) == len(row.torch) == 1, row.name
        assert math.isfinite(row.ratio) and row.ratio > 0, row.name
    assert result.peak_gflops > 0 and any(line.startswith("warm-up") for line in log)
    assert result.machine["cores"] >= 1 and result.machine["torch"].startswith("2.")


def test_table_and_markdown_show_every_row(tiny_result):
    result, _ = tiny_result
    text = bench.format_table(result)
    md = bench.to_markdown(result, "cnnlab bench --quick")
    for row in result.rows:
        assert row.name in text and row.name in md
    assert "`cnnlab bench --quick`" in md and "GFLOP/s" in md and "Load average" in md
    table = md[md.index("## All figures"):].splitlines()
    table = [line for line in table if line.startswith("| ")]
    assert len(table) == 1 + len(result.rows)  # header + rows
    for line in table[1:]:
        ratio = float(line.split(" | ")[3])
        assert math.isfinite(ratio) and ratio > 0
    # every training, inference and memory row is checked against its target
    checked = bench.check_targets(result)
    assert [name for name, *_ in checked] == [r.name for r in result.rows]
    limits = {name: limit for name, _, limit, _ in checked}
    assert limits["epoch b32 SGD+momentum"] == 0.8 and limits["predict 64 test images (batch 32)"] == 0.5
    assert limits["relu @128"] == limits[flops.rgb_block_name(8)] == 1.25
    assert limits["peak RSS after training (MB, 96 images)"] == 0.7
    assert all(math.isfinite(ratio) for _, ratio, _, _ in checked)
    assert md.count("| <= ") == len(checked)


def test_flop_counts_of_simple_cnn():
    # forward: conv1 451,584 + conv2 7,225,344 + dense 802,816 + 2,560 FLOPs per image
    assert flops.FLOPS_FWD == 8_482_304
    assert flops.FLOPS_TRAIN == 3 * 8_482_304 - 451_584
    assert flops.layer_flops("conv", dict(cin=32, cout=64), (32, 14, 14), 64) == 3 * 2 * 64 * 64 * 288 * 196
    assert flops.layer_flops("relu", {}, (128,), 64) is None


def test_ladder_through_the_command_line(capsys):
    assert cli_main(["bench", "--impl", "naive", "--impl", "fast", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "naive" in out and "fast (numpy)" in out
    for name, *_ in bench.LADDER:
        assert name in out
    results = bench.run_ladder(("im2col",), repeats=1)
    assert [(label, name) for label, name, _ in results] == [("im2col", name) for name, *_ in bench.LADDER]
    assert all(math.isfinite(sec) and sec > 0 for *_, sec in results)


def test_command_line_rejects_bad_options(capsys):
    assert cli_main(["bench", "--repeats", "0"]) == 2
    assert "expected an integer in [1, 1000]" in capsys.readouterr().err
    assert cli_main(["bench", "--only", "epochs"]) == 2
    assert "invalid choice: 'epochs'" in capsys.readouterr().err


def test_only_some_parts():
    cfg = bench.BenchConfig(repeats=1, gap=0.0, parts=("rgb",), rgb_sizes=(8,), rgb_batch=2)
    result = bench.run_vs_torch(cfg)
    assert [row.group for row in result.rows] == ["rgb", "memory"]
    # 2 FLOPs per multiply-add: conv1 forward + dW, conv2 forward + dW + dX
    assert result.rows[0].flops == 2 * 2 * 2 * 64 * 27 * 64 + 3 * 2 * 2 * 64 * 576 * 64
    assert all(row.a > 0 and row.b > 0 for row in result.rows)


def test_command_line_options_reach_the_settings(monkeypatch, capsys):
    from cnnlab.bench import cli

    seen = []

    def fake_run(cfg, log=None):
        seen.append(cfg)
        return bench.BenchResult([], cfg, {}, 1.0, (0.0,), (0.0,), 0.0)
    monkeypatch.setattr(cli, "run_vs_torch", fake_run)
    assert cli_main(["bench", "--repeats", "5", "--no-doctor-off", "--only", "rgb", "--only", "train"]) == 0
    cfg = seen[-1]
    assert (cfg.repeats, cfg.doctor_off, cfg.parts) == (5, False, ("train", "rgb"))
    assert cfg.rgb_sizes == flops.RGB_SIZES == (32, 64, 128, 224) and cfg.rgb_batch == 16
    assert cli_main(["bench", "--quick"]) == 0
    assert seen[-1].parts == bench.results.PARTS and seen[-1].rgb_sizes == (32,) and seen[-1].doctor_off
