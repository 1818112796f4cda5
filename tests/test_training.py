"""compile/fit/evaluate/predict: learning, exact reproducibility, input checks before any change."""
import json

import numpy as np
import pytest

from cnnlab.datasets import load_mnist
from cnnlab.layers import Conv2d, Dense, Dropout, Flatten, MaxPool2d, ReLU
from cnnlab.models import Sequential
from cnnlab.ops.loss import softmax_cross_entropy
from cnnlab.training import FitConfig, History, compile_model, evaluate, fit, predict


@pytest.fixture(scope="module")
def mnist():
    (x, y), (xt, yt) = load_mnist(verify=False)
    prep = lambda a: (a.astype(np.float32) / 255)[:, None]  # noqa: E731  (N, 1, 28, 28)
    return prep(x[:512]), y[:512].astype(np.int64), prep(xt[:256]), yt[:256].astype(np.int64)


def tiny(seed=0, dropout=False):
    layers = [Conv2d(1, 4, 3, padding=1, rng=seed), ReLU(), MaxPool2d(2), Flatten()]
    if dropout:
        layers.append(Dropout(0.3))
    layers.append(Dense(4 * 14 * 14, 10, rng=seed))
    return Sequential(layers, input_shape=(1, 28, 28), name="tiny")


def weights(model):
    return [p.data.copy() for p in model.parameters()]


def opt_state(model):
    st = model.optimizer.state_dict()
    return st["step"], {k: v.copy() for k, v in st["buffers"].items()}


# ----- learning --------------------------------------------------------------------------------
def test_fit_learns_mnist_subset_and_records_history(mnist):
    x, y, xt, yt = mnist
    model = tiny().compile("adam", lr=1e-2)
    h = model.fit(x, y, epochs=4, batch_size=32, seed=0, verbose=0, validation_data=(xt, yt))
    assert isinstance(h, History) and h.epoch == [0, 1, 2, 3] and h.stop_reason == "completed"
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert all(len(v) == 4 for v in h.history.values())
    assert h.history["accuracy"][-1] > 0.8
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert h.history["lr"] == [0.01] * 4
    loss, acc = model.evaluate(xt, yt)
    assert (loss, acc) == pytest.approx((h.history["val_loss"][-1], h.history["val_accuracy"][-1]))
    assert acc > 0.7


def test_same_seed_gives_bit_identical_weights_and_different_seed_does_not(mnist):
    x, y, *_ = mnist
    runs = []
    for seed in (5, 5, 6):
        model = tiny(dropout=True).compile("adam", lr=1e-2)
        model.fit(x[:256], y[:256], epochs=2, batch_size=32, seed=seed, verbose=0, augment=1)
        runs.append(weights(model))
    assert all(np.array_equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert not all(np.array_equal(a, c) for a, c in zip(runs[0], runs[2]))


def test_fit_generator_owns_dropout_rng(mnist):
    x, y, *_ = mnist
    model = tiny(dropout=True).compile("sgd", lr=0.1)
    seen = []

    def augment(xb, rng):
        seen.append(rng)
        return xb

    model.fit(x[:64], y[:64], epochs=1, batch_size=32, seed=0, verbose=0, augment=augment)
    assert len(seen) == 2 and seen[0] is seen[1] and model.layers[4].rng is seen[0]


def test_validation_split_holds_out_the_last_samples(mnist):
    x, y, *_ = mnist
    model = tiny().compile("sgd", lr=0.05)
    h = model.fit(x[:100], y[:100], epochs=1, batch_size=50, validation_split=0.2, seed=0, verbose=0)
    assert h.params["samples"] == 80 and h.params["steps"] == 2
    assert h.history["val_loss"][0] == pytest.approx(evaluate(model, x[80:100], y[80:100])[0])


def test_evaluate_matches_direct_computation_and_batch_size(mnist):
    *_, xt, yt = mnist
    model = tiny()
    logits = model.forward(xt)
    loss, _ = softmax_cross_entropy(logits, yt)
    acc = float(np.mean(logits.argmax(1) == yt))
    assert evaluate(model, xt, yt, batch_size=256) == pytest.approx((loss, acc), rel=1e-5)
    assert evaluate(model, xt, yt, batch_size=7) == pytest.approx((loss, acc), rel=1e-5)


def test_predict_batches_give_probabilities_and_keep_no_caches(mnist):
    *_, xt, _ = mnist
    model = tiny()
    p_big = predict(model, xt, batch_size=256)
    p_small = model.predict(xt, batch_size=10)
    assert p_big.shape == (256, 10) and p_big.dtype == np.float32
    np.testing.assert_allclose(p_big.sum(1), 1, rtol=1e-5)
    np.testing.assert_allclose(p_big, p_small, rtol=1e-5, atol=1e-7)
    assert all(layer._cache is None for layer in model.layers)


def test_verbose_2_prints_one_line_per_epoch_and_0_prints_nothing(mnist, capsys):
    x, y, *_ = mnist
    model = tiny().compile("sgd", lr=0.05)
    model.fit(x[:64], y[:64], epochs=2, batch_size=32, seed=0, verbose=2)
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("Epoch 1/2") and "loss=" in lines[1] and "img/s" in lines[1]
    model.fit(x[:64], y[:64], epochs=1, batch_size=32, seed=0, verbose=0)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_verbose_1_shows_a_progress_bar(mnist, capsys):
    x, y, *_ = mnist
    tiny().compile("sgd", lr=0.05).fit(x[:64], y[:64], epochs=1, batch_size=32, seed=0, verbose=1)
    err = capsys.readouterr().err
    assert "Epoch 1/1" in err and "2/2" in err and "img/s" in err


# ----- input checks happen before any state change ----------------------------------------------
def _bad_calls(x, y):
    n = 64
    xs, ys = x[:n], y[:n]
    return [
        (dict(x=(xs * 255).astype(np.uint8)), TypeError, r"astype\('float32'\) / 255"),
        (dict(x=xs.astype(np.float64)), TypeError, r"astype\(np.float32\)"),
        (dict(x=xs.transpose(0, 2, 3, 1)), ValueError, "channels-first"),
        (dict(x=xs[:, 0]), ValueError, r"x\[:, None\]"),
        (dict(y=ys[:10]), ValueError, "64 samples"),
        (dict(y=ys.astype(np.float32)), TypeError, "integer"),
        (dict(y=np.where(ys == 0, 10, ys)), ValueError, r"\[0, 9\]"),
        (dict(y=np.eye(10, dtype=np.int64)[ys]), ValueError, "argmax"),
        (dict(x=np.where(np.arange(n)[:, None, None, None] == 3, np.nan, xs).astype(np.float32)), ValueError, "NaN"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(epochs=1.5), TypeError, "epochs"),
        (dict(validation_split=1.0), ValueError, "validation_split"),
        (dict(verbose=3), ValueError, "verbose"),
        (dict(augment="yes"), TypeError, "augment"),
        (dict(validation_data=(xs, ys[:3])), ValueError, "y_val"),
        (dict(checkpoint="/nonexistent-folder/ck.npz"), FileNotFoundError, "does not exist"),
        (dict(resume_from="/nonexistent-folder/ck.npz"), ValueError, "no model file"),
    ]


def test_bad_inputs_raise_before_weights_or_optimizer_change(mnist):
    x, y, *_ = mnist
    model = tiny(dropout=True).compile("adam", lr=1e-2)
    model.fit(x[:64], y[:64], epochs=1, batch_size=32, seed=0, verbose=0)  # give the optimizer state
    rng_before = model.layers[4].rng
    w0, (step0, buf0) = weights(model), opt_state(model)
    for kwargs, err, match in _bad_calls(x, y):
        call = dict(x=x[:64], y=y[:64], epochs=1, batch_size=32, verbose=0, seed=1)
        call.update(kwargs)
        with pytest.raises(err, match=match):
            fit(model, **call)
        assert all(np.array_equal(a, b) for a, b in zip(w0, weights(model))), kwargs
        step, buf = opt_state(model)
        assert step == step0 and all(np.array_equal(buf0[k], buf[k]) for k in buf0), kwargs
        assert model.layers[4].rng is rng_before


def test_fit_needs_a_compiled_model(mnist):
    x, y, *_ = mnist
    with pytest.raises(RuntimeError, match="compile"):
        tiny().fit(x[:8], y[:8], verbose=0)


def test_compile_rejects_unknown_names_without_changing_the_model():
    model = tiny()
    for kwargs, err in [(dict(optimizer="adamm"), ValueError), (dict(loss="mse"), ValueError),
                        (dict(metrics=["f1"]), ValueError), (dict(optimizer="sgd", betas=(0.9, 0.9)), TypeError)]:
        with pytest.raises(err):
            compile_model(model, **kwargs)
        assert getattr(model, "optimizer", None) is None
    compile_model(model, "sgd", metrics=["acc"], lr=0.1, momentum=0.9)
    assert model.metrics == ["accuracy"] and model.optimizer.lr == 0.1
    assert model.optimizer.params == model.parameters()


def test_fit_config_defaults_and_history_json_round_trip(mnist):
    assert FitConfig().batch_size == 32 and FitConfig().epochs == 1 and FitConfig().doctor is True
    x, y, *_ = mnist
    h = tiny().compile("sgd", lr=0.05).fit(x[:64], y[:64], epochs=2, batch_size=32, seed=0, verbose=0)
    back = History.from_dict(json.loads(json.dumps(h.to_dict())))
    assert back.history == h.history and back.epoch == h.epoch and back.stop_reason == "completed"


def test_float64_model_trains_on_float64_data(mnist):
    x, y, *_ = mnist
    model = tiny().astype(np.float64).compile("sgd", lr=0.05)
    h = model.fit(x[:64].astype(np.float64), y[:64], epochs=1, batch_size=32, seed=0, verbose=0)
    assert np.isfinite(h.history["loss"][0]) and model.parameters()[0].data.dtype == np.float64
