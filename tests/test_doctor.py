"""The training doctor: each diagnosis from a run built to trigger it, and a healthy run with none."""
import warnings

import numpy as np
import pytest

from cnnlab.training.callbacks import Callback
from cnnlab.training.schedules import LearningRateScheduler
from cnnlab.datasets import load_mnist
from cnnlab.training.doctor import Diagnosis, Doctor, DoctorWarning
from cnnlab.models.io import load_model
from cnnlab.layers import Conv2d, Dense, Flatten, MaxPool2d, ReLU, Sigmoid, Softmax
from cnnlab.models import Sequential


@pytest.fixture(scope="module")
def mnist():
    (x, y), _ = load_mnist(verify=False)
    return (x[:512].astype(np.float32) / 255)[:, None], y[:512].astype(np.int64)


def tiny(seed=0, tail=()):
    return Sequential([Conv2d(1, 4, 3, padding=1, rng=seed), ReLU(), MaxPool2d(2), Flatten(),
                       Dense(4 * 14 * 14, 10, rng=seed), *tail], input_shape=(1, 28, 28), name="tiny")


def mlp(widths, act=ReLU, seed=0, init="he_normal"):
    layers, prev = [Flatten()], 784
    for i, w in enumerate(widths):
        layers += [Dense(prev, w, rng=seed + i, weight_init=init), act()]
        prev = w
    layers.append(Dense(prev, 10, rng=seed + 99))
    return Sequential(layers, input_shape=(1, 28, 28))


def fit_recording(model, x, y, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = model.fit(x, y, verbose=0, seed=0, **kw)
    doctor_warnings = [w for w in caught if issubclass(w.category, DoctorWarning)]
    return h, doctor_warnings


def kinds(h):
    return [d.kind for d in h.diagnostics]


FAST = dict(stuck_after=30, stuck_window=10, grad_every=1, relu_every=1)  # sample every batch in small runs


def test_healthy_run_triggers_no_diagnosis(mnist):
    model = tiny().compile("adam", lr=1e-2)
    h, caught = fit_recording(model, *mnist, epochs=3, batch_size=16, doctor=Doctor(**FAST))
    assert h.history["accuracy"][-1] > 0.8
    assert h.diagnostics == [] and caught == []


def test_double_softmax(mnist):
    model = tiny(tail=[Softmax()]).compile("adam")
    h, caught = fit_recording(model, *(a[:32] for a in mnist), epochs=1, batch_size=32)
    assert kinds(h) == ["double_softmax"] and len(caught) == 1
    assert "remove the final Softmax" in h.diagnostics[0].message and h.diagnostics[0].epoch is None


def test_unscaled_inputs(mnist):
    x, y = mnist
    model = tiny().compile("sgd", lr=1e-4)
    h, caught = fit_recording(model, x[:32] * 255, y[:32], epochs=1, batch_size=32)
    assert "unscaled_inputs" in kinds(h)
    assert "/ 255" in h.diagnostics[0].message and h.diagnostics[0].details["max"] == 255.0


def test_loss_stuck_at_ln_k(mnist):
    x, y = mnist
    shuffled = np.random.default_rng(0).permutation(y)  # labels that no longer match the images
    model = tiny().compile("adam", lr=1e-3)
    h, caught = fit_recording(model, x, shuffled, epochs=2, batch_size=16, doctor=Doctor(**FAST))
    assert kinds(h) == ["loss_stuck"] and len(caught) == 1
    d = h.diagnostics[0]
    assert abs(d.details["mean_loss"] - np.log(10)) < 0.05 * np.log(10)
    assert "ln(10) = 2.303" in d.message and "labels" in d.message
    assert d.details["batches"] == 30 and (d.epoch, d.batch) == (1, 30)


class Snapshot(Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.weights = [p.data.copy() for p in self.model.parameters()]


def test_divergence_names_epoch_batch_and_layer_and_keeps_the_last_good_checkpoint(mnist, tmp_path):
    x, y = mnist
    ck = tmp_path / "ck.npz"
    snap = Snapshot()
    blow_up = LearningRateScheduler(lambda epoch, lr0: lr0 if epoch == 0 else 1e30)
    model = tiny().compile("sgd", lr=0.05)
    h, caught = fit_recording(model, x[:256], y[:256], epochs=3, batch_size=32, checkpoint=ck,
                              callbacks=[blow_up, snap])
    assert h.stop_reason == "diverged" and h.epoch == [0] and h.stopped_at["epoch"] == 2
    d = [r for r in h.diagnostics if r.kind == "non_finite"][0]
    assert f"epoch 2, batch {h.stopped_at['batch']}" in d.message and "layer" in d.message
    assert d.details["layer"] is not None and d.details["layer_name"] in d.message
    assert str(ck) in d.message and h.last_good_checkpoint == str(ck)
    assert any("diverged" in str(w.message) for w in caught)
    good = load_model(ck)  # the checkpoint from the end of epoch 1 survives, finite
    assert all(np.array_equal(p.data, s) for p, s in zip(good.parameters(), snap.weights))


def test_locate_nonfinite_finds_the_first_bad_layer(mnist):
    x, y = mnist
    doc = Doctor(emit=False)
    model = mlp([8, 8])
    model.compile("sgd")
    model.layers[3].weight.data[0, 0] = np.inf  # weights of the second Dense
    loc = doc.locate_nonfinite(model, model.loss_fn, x[:4], y[:4])
    assert loc["where"] == "weights" and loc["layer"] == 3
    model = mlp([8, 8])
    model.compile("sgd")
    model.layers[3].weight.data[:] = 3e38  # finite, but its output overflows
    loc = doc.locate_nonfinite(model, model.loss_fn, x[:4], y[:4])
    assert loc["where"] == "output" and loc["layer"] == 3 and "dense_2" in loc["label"]


def test_exploding_gradients(mnist):
    model = mlp([32, 32])
    for layer in model.layers:
        if isinstance(layer, Dense):
            layer.weight.data *= 50  # each layer multiplies activations (and gradients) by ~50
    model.compile("sgd", lr=1e-6)
    h, _ = fit_recording(model, *(a[:64] for a in mnist), epochs=1, batch_size=32, doctor=Doctor(**FAST))
    assert "exploding_gradients" in kinds(h)
    d = h.diagnostics[kinds(h).index("exploding_gradients")]
    assert d.details["norm"] > 1e3 and (d.epoch, d.batch) == (1, 1)


def test_vanishing_gradients(mnist):
    model = mlp([32] * 14, act=Sigmoid, init="glorot_uniform").compile("sgd", lr=0.01)
    h, caught = fit_recording(model, *(a[:64] for a in mnist), epochs=1, batch_size=32, doctor=Doctor(**FAST))
    assert kinds(h) == ["vanishing_gradients"] and len(caught) == 1
    assert h.diagnostics[0].details["layer"] == 1  # the first Dense gets the smallest gradient
    assert "Sigmoid" in h.diagnostics[0].message


def test_dead_relus(mnist):
    model = mlp([16]).compile("sgd", lr=1e-3)
    model.layers[1].bias.data[:] = -100  # every unit of the first ReLU is negative for every image
    h, _ = fit_recording(model, *(a[:64] for a in mnist), epochs=1, batch_size=32, doctor=Doctor(**FAST))
    assert "dead_relu" in kinds(h)
    d = h.diagnostics[kinds(h).index("dead_relu")]
    assert d.details == {"layer": 2, "dead_fraction": 1.0} and "100%" in d.message


def test_dead_relu_check_stops_at_the_last_relu(mnist):
    # the layers after the last ReLU do not change its verdict, so they do not run
    model = mlp([16]).compile("sgd", lr=1e-3)
    model.layers[1].bias.data[:] = -100
    last = model.layers[-1]

    def refuse(*args, **kwargs):
        raise AssertionError("a layer after the last ReLU ran")
    doctor = Doctor(**FAST)
    doctor.reset(10)
    last.forward = refuse
    assert doctor._check_relus(model, mnist[0][:8], 0, 0)
    model.layers[1].bias.data[:] = 0.1  # alive now: every ReLU is looked at, still not the last layer
    assert not doctor._check_relus(model, mnist[0][:8], 0, 1)
    assert [d.kind for d in doctor.records] == ["dead_relu"]


class GrowLR(Callback):
    """A learning-rate range test: the rate grows 15% per batch until the loss climbs."""

    def on_batch_end(self, batch, logs=None):
        self.model.optimizer.lr *= 1.15


def test_loss_rising_from_a_too_large_learning_rate(mnist):
    model = tiny().compile("adam", lr=1e-3)
    h, _ = fit_recording(model, *mnist, epochs=1, batch_size=8, callbacks=[GrowLR()])
    assert "loss_rising" in kinds(h)
    d = h.diagnostics[kinds(h).index("loss_rising")]
    q = d.details["quarters"]
    assert q[3] > 1.3 * min(q[:3]) and "learning rate" in d.message


def test_each_kind_is_reported_once_and_doctor_false_is_silent(mnist):
    x, y = mnist
    model = tiny(tail=[Softmax()]).compile("adam")
    h, caught = fit_recording(model, x[:64] * 255, y[:64], epochs=2, batch_size=16, doctor=False)
    assert h.diagnostics == [] and caught == []
    doc = Doctor(emit=False)
    for _ in range(3):
        doc.report("dead_relu", "x", 1, 1)
    assert len(doc.records) == 1 and isinstance(doc.records[0], Diagnosis)
    assert Diagnosis.from_dict(doc.records[0].to_dict()) == doc.records[0]


# ----- divergence the way `cnnlab train --optimizer sgd --lr 1 / --lr 100` showed it ---------------------
def _simple_cnn_sgd(lr):
    from cnnlab.models.zoo import simple_cnn

    return simple_cnn(seed=0).compile("sgd", lr=lr, momentum=0.9)


@pytest.fixture(scope="module")
def mnist_2000():
    (x, y), _ = load_mnist(verify=False)
    return (x[:2000].astype(np.float32) / 255)[:, None], y[:2000].astype(np.int64)


def test_sgd_lr_1_explodes_then_sits_at_chance_and_both_are_named(mnist_2000):
    h, caught = fit_recording(_simple_cnn_sgd(1.0), *mnist_2000, epochs=2, batch_size=64)
    by_kind = {d.kind: d for d in h.diagnostics}
    assert h.history["loss"][0] > 1e3  # the explosion really happened (2.4e13 at batch 6)
    exploding = by_kind["exploding_loss"]
    assert exploding.epoch == 1 and exploding.details["loss"] > 10 * np.log(10)
    assert "lower the learning rate by 10x, from 1 to 0.1" in exploding.message
    stuck = by_kind["loss_stuck"]  # epoch 2: loss ~ ln 10, accuracy ~ 1/10
    assert stuck.epoch == 2 and abs(h.history["loss"][1] - np.log(10)) < 0.12 and h.history["accuracy"][1] < 0.15
    assert "ln(10) = 2.303" in stuck.message and "exploded" in stuck.message and "from 1 to 0.1" in stuck.message
    assert {w.message.args[0].split(")")[0] for w in caught} >= {"training doctor (exploding_loss",
                                                                  "training doctor (loss_stuck"}


def test_sgd_lr_100_is_named_exploding_loss_with_the_fix(mnist):
    h, _ = fit_recording(_simple_cnn_sgd(100.0), *mnist, epochs=1, batch_size=64)
    exploding = [d for d in h.diagnostics if d.kind == "exploding_loss"]
    assert len(exploding) == 1 and exploding[0].details["lr"] == 100.0
    assert "from 100 to 10" in exploding[0].message
    h, _ = fit_recording(_simple_cnn_sgd(100.0), *mnist, epochs=6, batch_size=64)  # 48 batches: past chance_after
    stuck = [d for d in h.diagnostics if d.kind == "loss_stuck"]  # broken for good: chance accuracy, loss >> ln 10
    assert len(stuck) == 1 and h.history["accuracy"][stuck[0].epoch - 1] < 0.15
    assert "exploded" in stuck[0].message and "from 100 to 10" in stuck[0].message


def test_stuck_at_chance_without_an_explosion_gives_the_data_advice():
    doc = Doctor(emit=False)
    doc.reset(10)
    doc.end_epoch(0, 2.30, lr=1e-3, accuracy=0.11)  # one short epoch: too early to call it stuck
    assert doc.records == []
    doc.step = 40
    doc.end_epoch(1, 2.30, lr=1e-3, accuracy=0.11)
    assert [d.kind for d in doc.records] == ["loss_stuck"]
    assert "labels match the inputs" in doc.records[0].message and "exploded" not in doc.records[0].message
    doc.reset(10)
    doc.step = 40
    doc.end_epoch(0, 2.30, lr=1e-3, accuracy=0.40)  # learning, merely uncertain: not chance
    doc.end_epoch(1, 1.20, lr=1e-3, accuracy=0.11)
    assert doc.records == []


def test_warnings_as_lines_prints_one_clean_line_and_leaves_other_warnings():
    from cnnlab.training.doctor import warnings_as_lines

    lines = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with warnings_as_lines(lines.append):
            Doctor().report("exploding_loss", "the loss exploded. Fix: lower it.", 1, 2)
            warnings.warn("something else", UserWarning)
    assert lines == ["training doctor (exploding_loss) [epoch 1, batch 2]: the loss exploded. Fix: lower it."]
    assert [str(w.message) for w in caught] == ["something else"]
