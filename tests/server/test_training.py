"""The Train page's worker: one run at a time, live curves, Stop -> checkpoint -> Resume, the
run folder of ``cnnlab train``, and "Use this model"."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from cnnlab.server.training_worker import TrainingJob, TrainSettings

#: the files ``cnnlab train`` writes into its output folder
TRAIN_FILES = {"model.npz", "checkpoint.npz", "history.json", "history.csv", "curves.png", "report.html"}


def _wait(client, states, timeout=120.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        snap = client.get("/api/train/status").json()
        if snap["state"] in states:
            return snap
        time.sleep(0.05)
    raise AssertionError(f"training did not reach {states}: {snap['state']}")


def test_a_toy_run_completes_with_the_files_of_cnnlab_train(client, app):
    r = client.post("/api/train/start", json={"model": "ox_cnn", "data": "ox", "epochs": 4, "batch_size": 16, "lr": 0.02})
    assert r.status_code == 200, r.text
    app.state.job.join(120)
    snap = _wait(client, {"completed"})
    assert set(snap["files"]) == TRAIN_FILES
    assert [p["epoch"] for p in snap["epoch_points"]] == [1, 2, 3, 4]
    assert len(snap["batch_points"]) == 4 * snap["steps"] // snap["window"]
    assert all(np.isfinite(p[1]) and 0 <= p[2] <= 1 for p in snap["batch_points"])
    assert snap["result"]["test"]["images"] == 200
    assert snap["views"]["filters"]["shape"] == [2, 1, 3, 3] and snap["views"]["maps"]["shape"] == [2, 4, 4]
    assert snap["can_use"] and not snap["can_resume"]


def test_one_run_at_a_time_stop_writes_a_checkpoint_that_resume_continues(client, app):
    job = app.state.job
    gate = threading.Event()
    original = job._update

    def slow_update(**fields):  # hold the run at its batches until the test has checked things
        original(**fields)
        if threading.current_thread() is job._thread and "batch" in fields:
            gate.wait(10)
    job._update = slow_update
    settings = {"model": "lines_cnn", "data": "lines", "epochs": 3, "batch_size": 16, "lr": 0.02}
    assert client.post("/api/train/start", json=settings).status_code == 200
    _wait(client, {"running"})
    second = client.post("/api/train/start", json=settings)
    assert second.status_code == 409 and "one run at a time" in second.json()["error"]
    assert client.post("/api/train/resume", json={}).status_code == 409
    assert client.post("/api/train/stop", json={}).status_code == 200
    gate.set()
    job.join(60)
    job._update = original
    snap = _wait(client, {"stopped"})
    assert "checkpoint.npz" in snap["files"] and "model.npz" not in snap["files"]
    assert snap["can_resume"] and snap["can_use"]
    done_before = snap["batch_points"][-1][0]
    assert done_before < 3 * snap["steps"]
    assert client.post("/api/train/resume", json={}).status_code == 200
    job.join(120)
    snap = _wait(client, {"completed"})
    assert set(snap["files"]) == TRAIN_FILES
    assert [p["epoch"] for p in snap["epoch_points"]][-1] == 3
    assert snap["batch_points"][-1][0] == 3 * snap["steps"]  # resumed where it stopped, not from the start
    threads = [t for t in threading.enumerate() if t.name == "cnnlab-lab-training"]
    assert threads == []


def test_use_this_model_switches_the_draw_page(client, app):
    client.post("/api/train/start", json={"model": "lines_cnn", "data": "lines", "epochs": 2, "lr": 0.02})
    app.state.job.join(120)
    _wait(client, {"completed"})
    r = client.post("/api/train/use", json={})
    assert r.status_code == 200 and r.json()["label"].endswith("model.npz")
    info = client.get("/api/model").json()
    assert info["name"] == "lines_cnn" and info["input_shape"] == [1, 8, 8]
    body = client.post("/api/predict", json={"example": 0}).json()
    assert body["pixels"]["shape"] == [1, 8, 8] and len(body["probabilities"]) == 2
    model = app.state.live.model
    x = (np.asarray(body["pixels"]["data"], np.float32).reshape(1, 1, 8, 8) / 255).astype(np.float32)
    np.testing.assert_allclose(body["probabilities"], model.predict(x)[0], rtol=1e-6)


def test_settings_are_checked_before_anything_starts(tmp_path):
    job = TrainingJob(tmp_path)
    from cnnlab.server.validation import BadRequest

    with pytest.raises(BadRequest, match="batch_size must be in"):
        TrainSettings.from_json({"model": "ox_cnn", "batch_size": 0})
    assert TrainSettings.from_json({"model": "simple_cnn"}).data == "mnist"
    assert not job.running and not any(tmp_path.iterdir())


def test_the_doctors_findings_reach_the_page(client, app):
    client.post("/api/train/start", json={"model": "lines_cnn", "lr": 10, "optimizer": "sgd", "epochs": 3})
    app.state.job.join(120)
    snap = _wait(client, {"completed", "diverged"})
    kinds = {d["kind"] for d in snap["diagnoses"]}
    assert kinds & {"dead_relu", "loss_rising", "non_finite"}, kinds
    assert all(d["message"] for d in snap["diagnoses"])
