"""One training run at a time, in a worker thread, with live snapshots for the Train page.

The run is ``cnnlab.training.fit`` with callbacks: :class:`LiveCallback` records the
batch-window and epoch curves, images/s, the first layer's filters and one fixed example's
feature maps (refreshed at most once a second, so the page costs the run little), and the
training doctor's findings. Stop sets a flag that the callback turns into the same
interruption as Ctrl-C at the next batch boundary: ``fit`` writes a mid-epoch checkpoint that
Resume continues. The run folder receives the files of ``cnnlab train``: model.npz,
checkpoint.npz, history.json, history.csv, curves.png and report.html.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cnnlab.datasets import add_channel_axis, load_mnist, to_float
from cnnlab.lab.demos import TOYS, toy_data
from cnnlab.lab.report import write_report
from cnnlab.lab.viz.training_views import training_curves
from cnnlab.layers import Conv2d
from cnnlab.models.io import load_model
from cnnlab.models.zoo import get_model
from cnnlab.server.encode import array_json, num
from cnnlab.server.validation import BadRequest, check_fields, get_bool, get_choice, get_float, get_int
from cnnlab.training import fit
from cnnlab.training.callbacks import Callback, CSVLogger
from cnnlab.training.checkpoints import save_training_state
from cnnlab.training.doctor import Doctor
from cnnlab.training.schedules import CosineDecay, StepDecay
from cnnlab.utils.files import atomic_write_text

#: zoo model -> the data it trains on (the model's input shape decides)
MODEL_DATA = {"simple_cnn": "mnist", "keras_tutorial_cnn": "mnist", "lenet5": "mnist", "bn_cnn": "mnist",
              "ox_cnn": "ox", "ox_tutorial_cnn": "ox", "lines_cnn": "lines"}
DATA_CHOICES = ("mnist", "ox", "lines")
MNIST_LIMIT = (100, 60000)
REFRESH_SECONDS = 1.0  # the filters and the fixed example's maps: at most this often
MAX_BATCH_POINTS = 2000  # bounded memory: older points are merged two by two beyond this


@dataclass(frozen=True)
class TrainSettings:
    """What the Train page can choose; every field is checked by :meth:`from_json`."""

    model: str = "lines_cnn"
    data: str = "lines"
    limit: int = 2000
    epochs: int = 3
    batch_size: int = 16
    optimizer: str = "adam"
    lr: float = 0.01
    augment: bool = False
    schedule: str = "none"
    seed: int = 0

    @classmethod
    def from_json(cls, data: dict) -> "TrainSettings":
        check_fields(data, cls.__dataclass_fields__)
        model = get_choice(data, "model", tuple(MODEL_DATA), cls.model)
        source = get_choice(data, "data", DATA_CHOICES, MODEL_DATA[model])
        if source != MODEL_DATA[model]:
            raise BadRequest(f"{model} takes {'28x28 MNIST digits' if MODEL_DATA[model] == 'mnist' else 'the ' + MODEL_DATA[model] + ' toy'}"
                             f"; choose data {MODEL_DATA[model]!r} for it (received {source!r})")
        return cls(model=model, data=source, limit=get_int(data, "limit", *MNIST_LIMIT, cls.limit),
                   epochs=get_int(data, "epochs", 1, 100, cls.epochs),
                   batch_size=get_int(data, "batch_size", 1, 1024, cls.batch_size),
                   optimizer=get_choice(data, "optimizer", ("sgd", "adam", "adamw"), cls.optimizer),
                   lr=get_float(data, "lr", 1e-6, 10.0, cls.lr), augment=get_bool(data, "augment", cls.augment),
                   schedule=get_choice(data, "schedule", ("none", "cosine", "step"), cls.schedule),
                   seed=get_int(data, "seed", 0, 2**31 - 1, cls.seed))


def load_data(settings: TrainSettings):
    """``(x_train, y_train), (x_test, y_test), class_names`` as float32 (N, 1, H, W) and int64."""
    if settings.data == "mnist":
        (x, y), (xt, yt) = load_mnist()
        x, y = x[:settings.limit], y[:settings.limit]
        prep = lambda a: add_channel_axis(to_float(a))  # noqa: E731  (N, 28, 28) uint8 -> (N, 1, 28, 28) float32
        return (prep(x), y.astype(np.int64)), (prep(xt), yt.astype(np.int64)), [str(d) for d in range(10)]
    (x, y), (xt, yt) = toy_data(settings.data, seed=settings.seed)
    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    return (f32(x), y.astype(np.int64)), (f32(xt), yt.astype(np.int64)), list(TOYS[settings.data]["classes"])


class LiveCallback(Callback):
    """Feeds a :class:`TrainingJob`'s snapshot from inside ``fit``; raises the Ctrl-C
    interruption at a batch boundary when Stop was asked."""

    def __init__(self, job: "TrainingJob", steps_done: int):
        super().__init__()
        self.job, self.step = job, steps_done
        self._sum = self._acc = 0.0
        self._n = 0
        self._last_refresh = 0.0
        self._t0 = time.perf_counter()
        self._images = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.job._update(epoch=epoch + 1)

    def on_batch_end(self, batch, logs=None):
        logs = logs or {}
        self.step += 1
        self._sum += logs.get("loss", 0.0)
        self._acc += logs.get("accuracy", 0.0)
        self._n += 1
        self._images += int(logs.get("size", 0))
        window = self.job.window
        point = None
        if self._n >= window:
            point = [self.step, num(self._sum / self._n), num(self._acc / self._n)]
            self._sum = self._acc = 0.0
            self._n = 0
        now = time.perf_counter()
        rate = self._images / max(now - self._t0, 1e-9)
        self.job._update(batch=batch + 1, step=self.step, images_per_s=rate, point=point)
        if now - self._last_refresh >= REFRESH_SECONDS:
            self._last_refresh = now
            self.job._refresh_views(self.model)
        if self.job._stop.is_set():
            raise KeyboardInterrupt  # fit's Ctrl-C path: a checkpoint at this batch, then return

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.job._update(epoch_point={"epoch": epoch + 1, **{k: num(v) for k, v in logs.items()}})
        self.job._refresh_views(self.model)


class TrainingJob:
    """At most one training run, in a worker thread; :meth:`snapshot` is what the page shows."""

    def __init__(self, runs_dir):
        self.runs_dir = Path(runs_dir)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._version = 0
        self._fixed = None  # (1, C, H, W): the example whose maps refresh during training
        self._reset(None, None)

    # ----- state ------------------------------------------------------------------------------
    def _reset(self, settings, folder) -> None:
        self.settings, self.folder = settings, folder
        self.state = "idle"
        self.epoch = self.batch = 0
        self.steps = 0  # batches per epoch
        self.step = 0  # batches done in this run, over all epochs (continues on Resume)
        self.window = 1
        self.images_per_s = None
        self.batch_points: list = []
        self.epoch_points: list = []
        self.diagnoses: list = []
        self.views: dict = {}
        self.result: dict = {}
        self.error = None
        self.doctor = None

    def _update(self, *, point=None, epoch_point=None, **fields) -> None:
        with self._lock:
            for k, v in fields.items():
                setattr(self, k, v)
            if point is not None:
                self.batch_points.append(point)
                if len(self.batch_points) > MAX_BATCH_POINTS:  # merge pairs: bounded memory on long runs
                    pts = self.batch_points
                    self.batch_points = [[b[0], _mean(a[1], b[1]), _mean(a[2], b[2])]
                                         for a, b in zip(pts[0::2], pts[1::2])] + ([pts[-1]] if len(pts) % 2 else [])
                    self.window *= 2
            if epoch_point is not None:
                self.epoch_points.append(epoch_point)
            if self.doctor is not None:
                self.diagnoses = [{"kind": d.kind, "message": d.message, "epoch": d.epoch, "batch": d.batch}
                                  for d in self.doctor.records]
            self._version += 1

    def _refresh_views(self, model) -> None:
        """The first conv layer's filters and the fixed example's maps after it (and its activation)."""
        conv = next((k for k, l in enumerate(model.layers) if isinstance(l, Conv2d)), None)
        if conv is None or self._fixed is None:
            return
        shown = conv + 1 if conv + 1 < len(model.layers) and model.layers[conv + 1].is_activation else conv
        outputs = model.intermediate_outputs(self._fixed)
        maps = outputs[shown][0]  # (F, H, W)
        views = {"filters": array_json(model.layers[conv].weight.data), "maps": array_json(maps),
                 "maps_layer": f"{model.layers[shown].name} ({type(model.layers[shown]).__name__})",
                 "maps_max": float(np.abs(maps).max()), "filters_max": float(np.abs(model.layers[conv].weight.data).max()),
                 "example": array_json(self._fixed[0, 0])}
        self._update(views=views)

    def snapshot(self) -> dict:
        """A JSON-able copy of the run's state (the Train page's data)."""
        with self._lock:
            have = self.folder is not None and self.folder.is_dir()
            files = sorted(p.name for p in self.folder.iterdir() if not p.name.startswith(".")) if have else []  # no lock file
            return {"state": self.state, "version": self._version,
                    "settings": None if self.settings is None else asdict(self.settings),
                    "run": None if self.folder is None else self.folder.name, "files": files,
                    "epoch": self.epoch, "epochs": None if self.settings is None else self.settings.epochs,
                    "batch": self.batch, "steps": self.steps, "window": self.window,
                    "images_per_s": self.images_per_s, "batch_points": list(self.batch_points),
                    "epoch_points": list(self.epoch_points), "diagnoses": list(self.diagnoses),
                    "views": dict(self.views), "result": dict(self.result), "error": self.error,
                    "can_resume": self.state == "stopped" and self.folder is not None
                    and (self.folder / "checkpoint.npz").is_file(),
                    "can_use": self.folder is not None and self.state in ("completed", "stopped")
                    and any((self.folder / f).is_file() for f in ("model.npz", "checkpoint.npz"))}

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ----- commands ---------------------------------------------------------------------------
    def start(self, settings: TrainSettings) -> None:
        with self._lock:
            if self.running:
                raise BadRequest("a training run is already running; stop it first (one run at a time)", 409)
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            folder = self.runs_dir / f"{settings.model}-{stamp}"
            n = 1
            while folder.exists():
                n += 1
                folder = self.runs_dir / f"{settings.model}-{stamp}-{n}"
            folder.mkdir()
            self._reset(settings, folder)
            self._launch(resume=False)

    def resume(self) -> None:
        with self._lock:
            if self.running:
                raise BadRequest("a training run is already running", 409)
            if self.state != "stopped" or self.folder is None or not (self.folder / "checkpoint.npz").is_file():
                raise BadRequest(f"nothing to resume: the last run is {self.state} (Resume continues a stopped run)", 409)
            self._launch(resume=True)

    def stop(self) -> None:
        with self._lock:
            if not self.running:
                raise BadRequest(f"no training run is running (the last one is {self.state})", 409)
            self._stop.set()
            self.state = "stopping"
            self._version += 1

    def join(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def trained_model(self):
        """The run's model (model.npz when finished, else the checkpoint) and a label for it."""
        with self._lock:
            folder, state = self.folder, self.state
        if folder is None or state not in ("completed", "stopped"):
            raise BadRequest(f"no finished or stopped run to use (the last run is {state})", 409)
        for name in ("model.npz", "checkpoint.npz"):
            if (folder / name).is_file():
                return load_model(folder / name), f"{folder.name}/{name}"
        raise BadRequest("the run folder holds no model yet", 409)

    # ----- the worker -------------------------------------------------------------------------
    def _launch(self, resume: bool) -> None:
        """Called with the lock held."""
        self._stop.clear()
        self.state, self.error = "running", None
        self._version += 1
        self._thread = threading.Thread(target=self._run, args=(resume,), name="cnnlab-lab-training", daemon=True)
        self._thread.start()

    def _run(self, resume: bool) -> None:
        try:
            self._train(resume)
        except Exception as err:  # noqa: BLE001  the page shows it; the server lives on
            self._update(state="failed", error=f"{type(err).__name__}: {err}")

    def _train(self, resume: bool) -> None:
        s, out = self.settings, self.folder
        (x, y), (xt, yt), class_names = load_data(s)
        model = get_model(s.model, seed=s.seed)
        model.compile(s.optimizer, **({"lr": s.lr, "momentum": 0.9} if s.optimizer == "sgd" else {"lr": s.lr}))
        val_split = 0.05 if s.data == "mnist" else 0.0
        n_train = len(x) - int(len(x) * val_split)
        steps = -(-n_train // s.batch_size)
        self._fixed = np.ascontiguousarray(xt[:1])  # (1, 1, H, W): the example whose maps refresh
        doctor = Doctor(emit=False)
        with self._lock:
            self.steps, self.doctor = steps, doctor
            if not resume:
                self.window = max(1, steps // 20)
        callbacks = [CSVLogger(out / "history.csv", append=resume), LiveCallback(self, steps_done=self.step)]
        if s.schedule == "cosine":
            callbacks.insert(0, CosineDecay(s.epochs))
        elif s.schedule == "step":
            callbacks.insert(0, StepDecay(step_size=max(1, -(-s.epochs // 3)), gamma=0.1))
        self._refresh_views(model)
        t0 = time.perf_counter()
        history = fit(model, x, y, epochs=s.epochs, batch_size=s.batch_size, validation_split=val_split,
                      callbacks=callbacks, verbose=0, seed=s.seed, augment=(2 if s.data == "mnist" else 1) if s.augment else None,
                      doctor=doctor, checkpoint=out / "checkpoint.npz",
                      resume_from=out / "checkpoint.npz" if resume else None)
        seconds = time.perf_counter() - t0
        record = {"model": s.model, "args": asdict(s), "history": history.to_dict(), "train_seconds": seconds}
        result = {"stop_reason": history.stop_reason, "train_seconds": seconds}
        if history.stop_reason in ("completed", "early_stopping"):
            self._update(state="finishing")
            test_loss, test_acc = model.evaluate(xt, yt)
            record["test"] = result["test"] = {"loss": test_loss, "accuracy": test_acc, "images": int(len(xt))}
            save_training_state(out / "model.npz", model, model.optimizer, epoch=len(history.epoch), history=history)
        _write_run_files(out, model, history, record, xt, yt, class_names)
        state = {"completed": "completed", "early_stopping": "completed", "interrupted": "stopped",
                 "diverged": "diverged"}.get(history.stop_reason, "failed")
        self._refresh_views(model)
        self._update(state=state, result=result)


def _write_run_files(out: Path, model, history, record: dict, xt, yt, class_names) -> None:
    """history.json, curves.png and (for a finished run) report.html, as ``cnnlab train`` writes them."""
    atomic_write_text(out / "history.json", json.dumps(record, indent=2, allow_nan=True))
    if history.epoch:
        training_curves(history, save=out / "curves.png")
    if "test" in record:
        write_report(out, model, history, xt, yt, settings={**record["args"], "test_accuracy": record["test"]["accuracy"],
                                                           "train_seconds": round(record["train_seconds"], 1)},
                     class_names=class_names)


def _mean(a, b):
    return None if a is None or b is None else (a + b) / 2
