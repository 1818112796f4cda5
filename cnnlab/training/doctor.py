"""The training doctor: watches a run and names common problems in plain words, with the fix.

``fit(..., doctor=True)`` (the default) runs these checks:

==========================  ===========================================================
kind                        when it is reported
==========================  ===========================================================
``double_softmax``          the model ends in Softmax but the loss applies softmax itself
                            (checked once, before training)
``unscaled_inputs``         the training inputs go above 1.5 (raw 0..255 pixels?),
                            checked once on the data before training
``loss_stuck``              after ``stuck_after`` batches the mean loss of the last
                            ``stuck_window`` batches is still within ``stuck_tolerance``
                            of ln(K), the loss of a uniform guess over K classes; or an
                            epoch ends with its accuracy near 1/K and its loss at ln(K)
                            or above, after ``chance_after`` batches (after an
                            explosion: the learning rate is far too large)
``exploding_loss``          a batch loss above ``explode_loss_ratio`` times the larger of
                            ln(K) and the run's first batch loss: the steps are too large
``non_finite``              the loss became NaN/inf; names the first layer whose weights,
                            output or gradient went non-finite (training stops)
``exploding_gradients``     a layer's gradient norm is above ``explode_norm`` or
                            non-finite (sampled every ``grad_every`` batches)
``vanishing_gradients``     a layer's gradient norm is below ``vanish_ratio`` times the
                            largest layer's (sampled every ``grad_every`` batches)
``dead_relu``               at least ``dead_fraction`` of a ReLU layer's units output 0
                            for a whole batch (sampled every ``relu_every`` batches)
``loss_rising``             the mean loss of the last quarter of an epoch is above
                            ``rise_ratio`` times (and ``rise_margin`` more than) that of its
                            best earlier quarter, or an epoch's loss is above the previous
                            epoch's by as much
==========================  ===========================================================

The hot path stays cheap: the per-batch work is a few float operations; gradient norms
and ReLU activity are looked at only on sampled batches, and layer outputs are recomputed
only after the loss has gone non-finite.

Reporting: each kind is reported at most once per ``fit`` call, as a ``DoctorWarning``
(a ``UserWarning`` subclass, so ``warnings.simplefilter("ignore", DoctorWarning)`` silences
the doctor and ``pytest.warns`` can test it), and kept as a ``Diagnosis`` record in
``history.diagnostics``. Warnings were chosen over plain printing so that scripts and
notebooks can filter, log or escalate them with the standard ``warnings`` machinery.
Epoch and batch numbers in records and messages count from 1.

Example:
    >>> doc = Doctor(emit=False)
    >>> doc.check_inputs(np.full((2, 1, 4, 4), 255.0, np.float32))
    >>> [d.kind for d in doc.records]
    ['unscaled_inputs']
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from cnnlab.training.diagnosis import KINDS, Diagnosis, DoctorWarning, warnings_as_lines  # noqa: F401  (re-exported)


def _layer_label(model, i: int) -> str:
    layer = model.layers[i]
    return f"layer {i} ({layer.name}: {layer!r})"


def _current_lr(model) -> float | None:
    lr = getattr(getattr(model, "optimizer", None), "lr", None)
    return None if lr is None else float(lr)


def _lower_lr_fix(lr: float | None) -> str:
    if lr is None:
        return "Fix: lower the learning rate by 10x (and again by 10x if it still explodes)."
    return (f"Fix: lower the learning rate by 10x, from {lr:g} to {lr / 10:g} (and again by 10x if it still "
            f"explodes); Adam with lr=1e-3 is a safe start.")


def _is_cross_entropy(loss_fn) -> bool:
    name = getattr(loss_fn, "name", "") or type(loss_fn).__name__
    return "cross" in str(name).lower() and "entropy" in str(name).lower()


class Doctor:
    """Checks a training run for common problems; ``fit`` calls its hooks.

    Args:
        stuck_after: batches before the "loss stuck at ln(K)" check starts.
        stuck_window: number of recent batch losses averaged for that check.
        stuck_tolerance: "near ln(K)" means within this fraction of ln(K).
        grad_every: sample per-layer gradient norms every this many batches.
        explode_norm: a layer gradient norm above this is "exploding".
        vanish_ratio: a layer gradient norm below this times the largest is "vanishing".
        relu_every: look at ReLU activity every this many batches.
        dead_fraction: report a ReLU layer when at least this fraction of its units is dead.
        rise_ratio: "rising" means the later mean loss exceeds the earlier by this factor...
        rise_margin: ...and by at least this much.
        min_rise_batches: epochs shorter than this skip the within-epoch rising check.
        unscaled_max: inputs whose maximum exceeds this look unscaled.
        chance_after: batches of training before an epoch's loss and accuracy can count as
            "stuck at chance" (one batch has not had time to learn anything).
        explode_loss_ratio: a batch loss above this times max(ln(K), first batch loss) is
            "exploding" (a healthy run never climbs 10x above where it started).
        emit: issue ``DoctorWarning`` warnings (records are kept either way).
        enabled: False keeps only the divergence report (which ``fit`` always needs).
    """

    def __init__(self, *, stuck_after: int = 300, stuck_window: int = 50, stuck_tolerance: float = 0.05,
                 grad_every: int = 50, explode_norm: float = 1e3, vanish_ratio: float = 1e-5,
                 relu_every: int = 100, dead_fraction: float = 0.5, rise_ratio: float = 1.3,
                 rise_margin: float = 0.15, min_rise_batches: int = 40, unscaled_max: float = 1.5,
                 explode_loss_ratio: float = 10.0, chance_after: int = 40, emit: bool = True, enabled: bool = True):
        for name, value in (("stuck_after", stuck_after), ("stuck_window", stuck_window),
                            ("grad_every", grad_every), ("relu_every", relu_every),
                            ("min_rise_batches", min_rise_batches), ("chance_after", chance_after)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Doctor {name} must be an int >= 1; received {value!r}.")
        self.stuck_after, self.stuck_window, self.stuck_tolerance = stuck_after, stuck_window, float(stuck_tolerance)
        self.grad_every, self.explode_norm, self.vanish_ratio = grad_every, float(explode_norm), float(vanish_ratio)
        self.relu_every, self.dead_fraction = relu_every, float(dead_fraction)
        self.rise_ratio, self.rise_margin = float(rise_ratio), float(rise_margin)
        self.min_rise_batches = min_rise_batches
        self.unscaled_max = float(unscaled_max)
        self.explode_loss_ratio, self.chance_after = float(explode_loss_ratio), chance_after
        self.emit, self.enabled = bool(emit), bool(enabled)
        self.reset()

    def reset(self, n_classes: int | None = None) -> None:
        """Forget a previous run (called by ``fit`` at the start of training)."""
        self.n_classes = n_classes
        self.records: list[Diagnosis] = []
        self._reported: set[str] = set()
        self._recent: list[float] = []
        self._epoch_losses: list[float] = []
        self._prev_epoch_loss: float | None = None
        self._start_loss: float | None = None  # the run's first batch loss
        self._peak: tuple[float, int, int] | None = None  # (loss, epoch, batch) of an explosion
        self.step = 0

    # ----- reporting ---------------------------------------------------------------------
    def report(self, kind: str, message: str, epoch: int | None = None, batch: int | None = None,
               details: dict | None = None, *, force: bool = False) -> Diagnosis | None:
        """Record (and warn about) a finding, at most once per kind; returns it, or None if
        this kind was already reported."""
        if kind in self._reported or not (self.enabled or force):
            return None
        self._reported.add(kind)
        where = "" if epoch is None else f" [epoch {epoch}" + ("" if batch is None else f", batch {batch}") + "]"
        record = Diagnosis(kind, message, epoch, batch, details)
        self.records.append(record)
        if self.emit:
            warnings.warn(f"training doctor ({kind}){where}: {message}", DoctorWarning, stacklevel=4)
        return record

    # ----- before training ---------------------------------------------------------------
    def check_model(self, model, loss_fn) -> None:
        """Double softmax: a final Softmax layer feeding a loss that applies softmax itself."""
        if not self.enabled or not getattr(model, "layers", None):
            return
        last = model.layers[-1]
        if last.outputs_probabilities and _is_cross_entropy(loss_fn):
            self.report(
                "double_softmax",
                f"the model ends with a Softmax layer ({last.name}) but {type(loss_fn).__name__} applies "
                f"softmax to its input itself, so probabilities are squashed twice and learning stalls. "
                f"Fix: remove the final Softmax layer; the loss takes raw scores (logits), and "
                f"predict() returns probabilities anyway.",
            )

    def check_inputs(self, x: np.ndarray) -> None:
        """Unscaled inputs: values far above 1 (e.g. raw 0..255 pixels)."""
        if not self.enabled or x.size == 0:
            return
        top = float(np.max(x))
        if top > self.unscaled_max:
            self.report(
                "unscaled_inputs",
                f"the training inputs go up to {top:g}; networks train best on inputs of about unit "
                f"scale. Fix: scale them, e.g. x = x.astype('float32') / 255 for 8-bit pixels "
                f"(cnnlab.datasets.preprocessing.to_float does this).",
                details={"max": top},
            )

    # ----- during training ---------------------------------------------------------------
    def wants_gradients(self) -> bool:
        """Whether the batch about to finish is one whose gradient norms are sampled."""
        return self.enabled and self.step % self.grad_every == 0

    def after_step(self, model, epoch: int, batch: int, loss: float, x_batch: np.ndarray | None = None) -> None:
        """Called after every optimizer step with the batch loss (gradients still attached).

        Args:
            epoch, batch: 0-based positions (reported from 1).
        """
        if not self.enabled:
            return
        self._check_exploding_loss(model, epoch, batch, loss)
        self._epoch_losses.append(loss)
        self._recent.append(loss)
        if len(self._recent) > self.stuck_window:
            del self._recent[0]
        if self.step % self.grad_every == 0:
            self._check_gradients(model, epoch, batch, x_batch)
        if x_batch is not None and self.step % self.relu_every == 0:
            self._check_relus(model, x_batch, epoch, batch)
        self.step += 1
        if (self.n_classes and self.n_classes > 1 and self.step >= self.stuck_after
                and (self.step - self.stuck_after) % self.stuck_window == 0
                and len(self._recent) == self.stuck_window):
            self._check_stuck(epoch, batch)

    def _check_exploding_loss(self, model, epoch: int, batch: int, loss: float) -> None:
        """Cheap, every batch: the loss far above where it started means the steps overshoot."""
        if self._start_loss is None:
            self._start_loss = loss
            return
        start = max(self._start_loss, math.log(self.n_classes) if self.n_classes and self.n_classes > 1 else 0.0)
        if loss <= self.explode_loss_ratio * start:
            return
        if self._peak is None or loss > self._peak[0]:
            self._peak = (loss, epoch + 1, batch + 1)
        lr = _current_lr(model)
        self.report(
            "exploding_loss",
            f"the loss exploded to {loss:.3g}, {loss / start:.3g} times its starting value ({start:.3f}): "
            f"the steps are so large that the weights are thrown far away. {_lower_lr_fix(lr)}",
            epoch + 1, batch + 1, {"loss": loss, "start": start, "lr": lr},
        )

    def _check_stuck(self, epoch: int, batch: int) -> None:
        chance = math.log(self.n_classes)
        mean = float(np.mean(self._recent))
        if abs(mean - chance) <= self.stuck_tolerance * chance:
            self.report(
                "loss_stuck",
                f"after {self.step} batches the loss is still {mean:.3f}, about ln({self.n_classes}) = "
                f"{chance:.3f}: the loss of guessing uniformly among {self.n_classes} classes, so the "
                f"model has learned nothing yet. Fix: check the labels match the inputs and the "
                f"inputs are scaled; try a larger learning rate (or Adam with lr=1e-3); look for a "
                f"Softmax before the loss or dead ReLUs.",
                epoch + 1, batch + 1, {"mean_loss": mean, "ln_k": chance, "batches": self.step},
            )

    def _check_gradients(self, model, epoch: int, batch: int, x_batch: np.ndarray | None = None) -> None:
        norms = []
        for i, layer in enumerate(model.layers):
            grads = [p.grad for p in layer.parameters() if p.grad is not None]
            if grads:
                sq = sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads)
                norms.append((i, math.sqrt(sq) if math.isfinite(sq) else math.inf))
        if not norms:
            return
        worst_i, worst = max(norms, key=lambda t: t[1])
        if not math.isfinite(worst) or worst > self.explode_norm:
            self.report(
                "exploding_gradients",
                f"the gradient of {_layer_label(model, worst_i)} has norm {worst:.3g} (above "
                f"{self.explode_norm:g}): updates this large throw the weights far away. Fix: lower "
                f"the learning rate, scale the inputs to [0, 1], use He/Glorot initialization, or add "
                f"BatchNorm.",
                epoch + 1, batch + 1, {"layer": worst_i, "norm": worst},
            )
            return
        low_i, low = min(norms, key=lambda t: t[1])
        if low == 0 and x_batch is not None and self._check_relus(model, x_batch, epoch, batch):
            return  # no gradient at all: dead ReLUs explain it better than "vanishing"
        if worst > 0 and low < self.vanish_ratio * worst:
            self.report(
                "vanishing_gradients",
                f"the gradient of {_layer_label(model, low_i)} has norm {low:.3g}, {low / worst:.1e} "
                f"times that of {_layer_label(model, worst_i)} ({worst:.3g}): that layer barely "
                f"learns. Fix: use ReLU instead of Sigmoid/Tanh in deep stacks, He initialization, "
                f"BatchNorm, or a shallower model.",
                epoch + 1, batch + 1, {"layer": low_i, "norm": low, "largest": worst},
            )

    def _check_relus(self, model, x_batch: np.ndarray, epoch: int, batch: int) -> bool:
        """Report the first ReLU layer with too many dead units; returns whether one was found."""
        relus = [i for i, layer in enumerate(model.layers) if layer.can_die]
        if not relus:
            return False
        # an inference pass (no caches), one layer's output held at a time: keeping them all
        # cost simple_cnn ~20 MB of peak memory at batch 128
        for i, out in enumerate(model.iter_outputs(x_batch)):
            if i in relus and out.ndim >= 2 and self._report_dead_units(model, i, out, epoch, batch):
                return True
            if i == relus[-1]:
                return False  # the layers after the last ReLU need not run
        return False

    def _report_dead_units(self, model, i: int, out: np.ndarray, epoch: int, batch: int) -> bool:
        """Report layer i if too many of its units output 0 for the whole batch; returns whether it did."""
        units = out.reshape(out.shape[0], out.shape[1], -1)  # (N, C, positions); a unit = a channel or feature
        alive = np.any(units > 0, axis=(0, 2))  # (C,)
        dead = 1.0 - float(np.mean(alive))
        if dead < self.dead_fraction:
            return False
        self.report(
            "dead_relu",
            f"{dead:.0%} of the units of {_layer_label(model, i)} output 0 for every image of "
            f"the batch: dead ReLUs pass no gradient and never recover. Fix: lower the learning "
            f"rate, use He initialization with zero biases, or LeakyReLU.",
            epoch + 1, batch + 1, {"layer": i, "dead_fraction": dead},
        )
        return True

    def end_epoch(self, epoch: int, epoch_loss: float, lr: float | None = None,
                  accuracy: float | None = None) -> None:
        """Rising loss: the epoch's last quarter above its best quarter, or above the previous epoch.
        Stuck at chance: the epoch's loss near ln(K) and its accuracy near 1/K.

        "Above" means more than ``rise_ratio`` times and more than ``rise_margin`` higher, so
        that batch-to-batch noise in a healthy run is not mistaken for a trend.
        """
        if not self.enabled:
            return
        self._check_chance_epoch(epoch, epoch_loss, lr, accuracy)
        losses = [v for v in self._epoch_losses if math.isfinite(v)]
        self._epoch_losses = []
        lr_text = "" if lr is None else f" (now {lr:g})"
        fix = f"Fix: lower the learning rate{lr_text}, e.g. by 10x, or use a schedule that decays it."
        if len(losses) >= self.min_rise_batches:
            q = len(losses) // 4
            quarters = [float(np.mean(losses[i * q:(i + 1) * q])) for i in range(3)] + [float(np.mean(losses[-q:]))]
            best, last = min(quarters[:3]), quarters[3]
            if last > self.rise_ratio * best and last - best > self.rise_margin:
                self.report(
                    "loss_rising",
                    f"the loss rose during epoch {epoch + 1}: the mean loss of its quarters was "
                    f"{', '.join(f'{v:.3f}' for v in quarters)}. A loss that goes up while training "
                    f"means the steps overshoot: the learning rate is too large. {fix}",
                    epoch + 1, None, {"quarters": quarters},
                )
        prev = self._prev_epoch_loss
        if (prev is not None and math.isfinite(epoch_loss) and epoch_loss > self.rise_ratio * prev
                and epoch_loss - prev > self.rise_margin):
            self.report(
                "loss_rising",
                f"the training loss rose from {prev:.3f} (epoch {epoch}) to {epoch_loss:.3f} (epoch "
                f"{epoch + 1}): the learning rate is probably too large. {fix}",
                epoch + 1, None, {"previous": prev, "current": epoch_loss},
            )
        if math.isfinite(epoch_loss):
            self._prev_epoch_loss = epoch_loss

    def _check_chance_epoch(self, epoch: int, epoch_loss: float, lr: float | None, accuracy: float | None) -> None:
        k = self.n_classes
        if accuracy is None or not k or k < 2 or not math.isfinite(epoch_loss) or self.step < self.chance_after:
            return
        chance = math.log(k)
        # 1.5/K: a model that answers one class for every image scores about 1/K on balanced data;
        # its loss is ln(K) (uniform scores) or above (confident and wrong), never well below
        if epoch_loss < (1 - self.stuck_tolerance) * chance or accuracy > 1.5 / k:
            return
        if self._peak is not None:
            peak, at_epoch, at_batch = self._peak
            cause = (f"Earlier the loss exploded (to {peak:.3g} at epoch {at_epoch}, batch {at_batch}) and the "
                     f"weights never came back: the learning rate is far too large. {_lower_lr_fix(lr)}")
        else:
            cause = ("Fix: check the labels match the inputs and the inputs are scaled; try another learning "
                     "rate (Adam with lr=1e-3 is a safe start); look for a Softmax before the loss or dead ReLUs.")
        self.report(
            "loss_stuck",
            f"epoch {epoch + 1} ended with loss {epoch_loss:.3g} (ln({k}) = {chance:.3f} is the loss of a uniform "
            f"guess) and accuracy {accuracy:.1%}, about 1/{k}: the model is guessing at chance, the same answer "
            f"for every image. {cause}",
            epoch + 1, None, {"mean_loss": epoch_loss, "ln_k": chance, "accuracy": accuracy,
                              "exploded_to": None if self._peak is None else self._peak[0]},
        )

    # ----- divergence ----------------------------------------------------------------------
    def locate_nonfinite(self, model, loss_fn, x_batch: np.ndarray, y_batch: np.ndarray) -> dict:
        """Find where a non-finite value first appears for one batch.

        Looks, in order, at the weights, the input, each layer's output (a fresh forward pass,
        layer by layer), the loss, then each layer's gradient from the last layer back. Run
        only after the loss has gone non-finite; the model's state is already lost by then.

        Returns:
            ``{"where": "weights" | "input" | "output" | "loss" | "gradient" | "unknown",
            "layer": index or None, "label": text}``.
        """
        with np.errstate(all="ignore"):
            for i, layer in enumerate(model.layers):
                for p in layer.parameters():
                    if not np.all(np.isfinite(p.data)):
                        return {"where": "weights", "layer": i,
                                "label": f"the weights ({p.name or 'parameter'}) of {_layer_label(model, i)}, "
                                         f"after the previous update: its gradient or the step overflowed"}
            if not np.all(np.isfinite(x_batch)):
                return {"where": "input", "layer": None, "label": "the input batch itself"}
            h = x_batch
            for i, layer in enumerate(model.layers):
                h = layer.forward(h, training=True, requires_grad=True)
                if not np.all(np.isfinite(h)):
                    return {"where": "output", "layer": i, "label": f"the output of {_layer_label(model, i)}"}
            loss = loss_fn.forward(h, y_batch)
            if not math.isfinite(loss):
                return {"where": "loss", "layer": None,
                        "label": f"the loss itself (logits range from {float(h.min()):.3g} to {float(h.max()):.3g})"}
            dout = loss_fn.backward()
            for i in range(len(model.layers) - 1, -1, -1):
                layer = model.layers[i]
                dout = layer.backward(dout)
                bad = not np.all(np.isfinite(dout)) or any(
                    p.grad is not None and not np.all(np.isfinite(p.grad)) for p in layer.parameters())
                if bad:
                    return {"where": "gradient", "layer": i, "label": f"the gradient of {_layer_label(model, i)}"}
        return {"where": "unknown", "layer": None, "label": "no single layer (the values were finite on re-running)"}
