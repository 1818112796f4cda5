"""``Sequential``: a list of layers run in order, with Keras-like conveniences.

The maths stays in the layers; this module only chains them, counts their parameters and
prints them. Training (``compile``/``fit``/``evaluate``/``predict``) is added by
``cnnlab.training``; saving by ``cnnlab.models.io``.
"""
from __future__ import annotations

import contextlib

import numpy as np

from cnnlab.utils.validation import check_float_array, layout_hint
from cnnlab.layers import LAYER_CLASSES
from cnnlab.layers.base import Layer, Parameter
from cnnlab.layers.describe import num, shape_text
from cnnlab.models.fusion import fuse_layers
from cnnlab.models.archive import save_model


def _check_input_shape(input_shape) -> tuple[int, ...]:
    """A per-sample shape: a tuple or list of positive ints, e.g. (1, 28, 28)."""
    if not isinstance(input_shape, (tuple, list)) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in input_shape):
        raise TypeError(f"input_shape must be a tuple of ints such as (1, 28, 28); received {input_shape!r}.")
    if len(input_shape) == 0 or min(input_shape) < 1:
        raise ValueError(f"input_shape sizes must be positive ints such as (1, 28, 28); received {tuple(input_shape)}.")
    return tuple(int(d) for d in input_shape)


class Sequential:
    """A stack of layers applied one after the other.

    Args:
        layers: the layers, in order.
        input_shape: per-sample input shape, e.g. ``(1, 28, 28)``; lets ``summary()`` and
            shape checks run before any data is seen.
        name: optional model name.

    Example:
        >>> from cnnlab.layers import Conv2d, ReLU, Flatten, Dense
        >>> model = Sequential([Conv2d(1, 4, 3, padding=1, rng=0), ReLU(), Flatten(),
        ...                     Dense(4 * 8 * 8, 10, rng=0)], input_shape=(1, 8, 8))
        >>> model.num_parameters()
        2610
        >>> model.forward(np.zeros((2, 1, 8, 8), np.float32)).shape
        (2, 10)
    """

    def __init__(self, layers: list[Layer] | None = None, input_shape: tuple[int, ...] | None = None, name: str | None = None):
        layers = list(layers or [])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential layer {i} must be a cnnlab Layer; received {type(layer).__name__}.")
        self.layers: list[Layer] = layers
        self.name = name or "sequential"
        self.input_shape = None if input_shape is None else _check_input_shape(input_shape)
        if self.input_shape is not None:
            self.layer_shapes(self.input_shape)  # fail now, with the offending layer named
        self._name_layers()
        self._plan_key = self._plan = self._steps = None

    # ----- building ----------------------------------------------------------------
    def _name_layers(self) -> None:
        counts: dict[str, int] = {}
        for layer in self.layers:
            kind = type(layer).__name__.lower()
            counts[kind] = counts.get(kind, 0) + 1
            if not layer.name:
                layer.name = f"{kind}_{counts[kind]}"

    def add(self, layer: Layer) -> "Sequential":
        """Append a layer (checked against the input shape when one is known)."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a cnnlab Layer; received {type(layer).__name__}.")
        self.layers.append(layer)
        try:
            if self.input_shape is not None:
                self.layer_shapes(self.input_shape)
        except (ValueError, TypeError):
            self.layers.pop()
            raise
        self._name_layers()
        return self

    def layer_shapes(self, input_shape: tuple[int, ...] | None = None) -> list[tuple[int, ...]]:
        """Per-sample output shape of every layer for a per-sample ``input_shape``.

        Raises:
            ValueError: naming the first layer whose input shape does not fit.
        """
        shape = _check_input_shape(input_shape) if input_shape is not None else self._known_input_shape()
        shapes = []
        for i, layer in enumerate(self.layers):
            try:
                shape = tuple(layer.output_shape(shape))
            except (ValueError, TypeError) as err:
                raise type(err)(f"layer {i} ({layer!r}) cannot take input of shape {shape}: {err}") from None
            shapes.append(shape)
        return shapes

    def _known_input_shape(self) -> tuple[int, ...]:
        if self.input_shape is None:
            raise ValueError("this model has no input_shape; pass input_shape=(C, H, W) to Sequential or to summary().")
        return self.input_shape

    # ----- computation -------------------------------------------------------------
    def forward(self, x: np.ndarray, *, training: bool = False, requires_grad: bool | None = None) -> np.ndarray:
        """Run every layer. x: (N, *input_shape) -> (N, *output_shape).

        The layers run as the steps of the fusion plan (``cnnlab.models.fusion``): the same
        numbers as one layer after the other, with Conv2d -> ReLU -> MaxPool2d as one op.
        """
        self._check_input(x)
        steps = self.plan(x.shape[1:])
        for step in steps:
            x = step.forward(x, training=training, requires_grad=requires_grad)
        self._steps = steps
        return x

    __call__ = forward

    def backward(self, dout: np.ndarray, *, need_input_grad: bool = True) -> np.ndarray | None:
        """Backpropagate d(loss)/d(output) through every step of the last forward; returns
        d(loss)/d(input), or None with ``need_input_grad=False`` (what ``fit`` asks: the input
        is data, and a first Conv2d then skips one GEMM and the col2im)."""
        steps = self._steps or self.layers
        for step in reversed(steps[1:]):
            dout = step.backward(dout)
        if not need_input_grad:
            steps[0].backward_params(dout)
            return None
        return steps[0].backward(dout)

    def plan(self, sample_shape) -> list:
        """The steps ``forward`` runs for per-sample input ``sample_shape`` (kept until the layers change)."""
        key = (tuple(sample_shape), tuple((id(l), getattr(l, "impl", None)) for l in self.layers))
        if key != self._plan_key:
            try:
                self._plan = fuse_layers(self.layers, sample_shape) if self.layers else []
            except (ValueError, TypeError):  # shapes that do not fit: the layers' own forward names the layer
                self._plan = list(self.layers)
            self._plan_key = key
        return self._plan

    @contextlib.contextmanager
    def preserved_state(self):
        """Run a block (an explanation, a saliency map) that does forward/backward passes, then
        put back every cache, every gradient and the last forward's steps as they were."""
        steps = self._plan or []
        holders = list(self.layers) + [s for s in steps if not isinstance(s, Layer)]
        caches = [(h, h._cache) for h in holders]
        grads = [(p, p.grad) for p in self.parameters()]
        last = self._steps
        try:
            yield self
        finally:
            for h, cache in caches:
                h._cache = cache
            for p, grad in grads:
                p.grad = grad
            self._steps = last

    def intermediate_outputs(self, x: np.ndarray, *, training: bool = False) -> list[np.ndarray]:
        """The output of every layer for input ``x`` (the model's own activations), in order."""
        return list(self.iter_outputs(x, training=training))

    def iter_outputs(self, x: np.ndarray, *, training: bool = False):
        """Each layer's output for input ``x``, in order, computed as the caller asks for it: a
        caller that keeps none holds one layer's input and output at a time, not the whole
        stack (``intermediate_outputs`` keeps them all). ``x`` is checked before any layer runs.

        Shape:
            x: (N, *input_shape); yields (N, *output shape of layer i) for each layer i.
        """
        self._check_input(x)
        return self._outputs(x, training)

    def _outputs(self, x: np.ndarray, training: bool):
        for layer in self.layers:
            x = layer.forward(x, training=training, requires_grad=False)
            yield x

    def _check_input(self, x) -> None:
        check_float_array(x, f"{type(self).__name__} input", self.dtype)
        if self.input_shape is not None and tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"model expected input of shape (N, {', '.join(map(str, self.input_shape))}); "
                             f"received {x.shape}.{layout_hint(x.shape, (None, *self.input_shape))}")

    def clear_caches(self) -> None:
        for layer in self.layers:
            layer.clear_cache()
        for step in self._plan or []:
            step.clear_cache()

    # ----- parameters ----------------------------------------------------------------
    def parameters(self) -> list[Parameter]:
        return [p for layer in self.layers for p in layer.parameters()]

    def num_parameters(self) -> int:
        return int(sum(p.size for p in self.parameters()))

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    @property
    def dtype(self):
        for layer in self.layers:
            if layer.dtype is not None:
                return layer.dtype
        return None

    def astype(self, dtype) -> "Sequential":
        """Convert every layer's parameters and buffers to ``dtype`` in place; returns self."""
        for layer in self.layers:
            layer.astype(dtype)
        return self

    def state_dict(self) -> dict[str, np.ndarray]:
        """All parameters and buffers, keyed ``"<index>.<attribute>"`` (arrays not copied)."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.state_dict().items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Set all parameters and buffers; every layer is checked before any is changed."""
        per_layer: list[dict] = [{} for _ in self.layers]
        expected = self.state_dict()
        missing, extra = set(expected) - set(state), set(state) - set(expected)
        if missing or extra:
            raise ValueError(f"model state mismatch: missing keys {sorted(missing)}, unexpected keys {sorted(extra)}.")
        for key, value in state.items():
            ref = expected[key]
            if not isinstance(value, np.ndarray) or value.shape != ref.shape or value.dtype != ref.dtype:
                got = f"shape {value.shape}, dtype {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
                raise ValueError(f"model state '{key}' expected shape {ref.shape}, dtype {ref.dtype}; received {got}.")
            index, attr = key.split(".", 1)
            per_layer[int(index)][attr] = value
        for layer, layer_state in zip(self.layers, per_layer):
            layer.load_state_dict(layer_state)

    # ----- description ---------------------------------------------------------------
    def summary(self, input_shape: tuple[int, ...] | None = None, *, print_fn=print) -> str:
        """A table of layer, output shape and parameter count, with totals.

        Computed from shapes alone, so it works before the model sees any data.

        Example:
            >>> from cnnlab.models.zoo import simple_cnn
            >>> text = simple_cnn().summary(print_fn=None)
            >>> text.splitlines()[-3]
            'Total params: 421,642'
        """
        shapes = self.layer_shapes(input_shape)
        rows = [("Layer (type)", "Output shape", "Param #")]
        for layer, shape in zip(self.layers, shapes):
            rows.append((f"{layer.name} ({type(layer).__name__})", str((None, *shape)), f"{layer.num_parameters():,}"))
        widths = [max(len(r[c]) for r in rows) + 2 for c in range(3)]
        rule = "=" * sum(widths)
        lines = [f'Model: "{self.name}"', rule, "".join(cell.ljust(w) for cell, w in zip(rows[0], widths)), rule]
        lines += ["".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows[1:]]
        total = self.num_parameters()
        lines += [rule, f"Total params: {total:,}", f"Trainable params: {total:,}", "Non-trainable params: 0"]
        # Buffers (BatchNorm running stats) are state but not parameters; report them apart.
        n_buffers = sum(v.size for layer in self.layers for v in layer.buffers().values())
        if n_buffers:
            lines[-1] = f"Non-trainable params: 0 (plus {n_buffers:,} buffer values, e.g. BatchNorm running stats)"
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text

    def get_config(self) -> dict:
        """JSON-serializable architecture: the class name and config of every layer."""
        return {
            "name": self.name,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "layers": [{"class": type(l).__name__, "name": l.name, "config": l.get_config()} for l in self.layers],
        }

    @classmethod
    def from_config(cls, config: dict) -> "Sequential":
        """Rebuild a model (fresh parameters) from ``get_config()`` output; validates every entry."""
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ValueError("model config must be a dict with a 'layers' list.")
        layers = []
        for i, entry in enumerate(config["layers"]):
            if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
                raise ValueError(f"model config layer {i} must be a dict with 'class' and 'config'.")
            cls_name = entry.get("class")
            if cls_name not in LAYER_CLASSES:
                raise ValueError(f"model config layer {i} has unknown class {cls_name!r}; known: {sorted(LAYER_CLASSES)}.")
            try:
                layer = LAYER_CLASSES[cls_name](**entry["config"])
            except (TypeError, ValueError) as err:
                raise ValueError(f"model config layer {i} ({cls_name}) is invalid: {err}") from None
            if isinstance(entry.get("name"), str):
                layer.name = entry["name"]
            layers.append(layer)
        input_shape = config.get("input_shape")
        if input_shape is not None and (
            not isinstance(input_shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and 0 < d < 2**20 for d in input_shape)
        ):
            raise ValueError(f"model config input_shape must be a list of positive ints; received {input_shape!r}.")
        name = config.get("name")
        return cls(layers, input_shape=input_shape, name=name if isinstance(name, str) else None)

    # ----- training and saving (implemented in cnnlab.training and cnnlab.models.io) ---------------
    def compile(self, optimizer="adam", loss="cross_entropy", metrics=("accuracy",), **optimizer_kwargs) -> "Sequential":
        """Choose the optimizer, loss and metrics (Keras style); see ``cnnlab.training.compile_model``."""
        from cnnlab.training import compile_model

        return compile_model(self, optimizer=optimizer, loss=loss, metrics=metrics, **optimizer_kwargs)

    def fit(self, x, y, epochs: int = 1, batch_size: int = 32, validation_split: float = 0.0,
            validation_data=None, shuffle: bool = True, callbacks=None, verbose: int = 1, seed: int | None = None,
            augment=None, doctor=True, resume_from=None, checkpoint=None, allow_change=("epochs",)):
        """Train the compiled model with mini-batch gradient descent; returns a ``History``.

        Args:
            x: float inputs of the model's dtype, already scaled (e.g. pixels / 255).
            y: integer class labels in [0, K).
            epochs: total epochs (a resumed run counts those already done).
            batch_size: samples per gradient step.
            validation_split: fraction of (x, y) held out, from the end, before shuffling.
            validation_data: ``(x_val, y_val)``, used instead of ``validation_split``.
            shuffle: reshuffle the training samples every epoch.
            callbacks: list of ``cnnlab.callbacks.Callback``.
            verbose: 0 silent, 1 a progress bar per epoch, 2 one line per epoch (for logs).
            seed: seed of the run's generator (shuffling, augmentation, dropout).
            augment: None, a maximum random shift in pixels, or ``fn(x_batch, rng) -> x_batch``.
            doctor: True, False or a configured ``cnnlab.doctor.Doctor``.
            resume_from: a checkpoint written by ``checkpoint=``, to continue that run.
            checkpoint: a file written atomically after every epoch (and on Ctrl-C).
            allow_change: on resume, the settings that may differ from the run's: "epochs"
                (allowed by default) and "lr"; any other difference is refused.

        Shape:
            x: (N, *input_shape). y: (N,).

        See ``cnnlab.training.fit`` for the details (divergence, interruption, randomness).
        """
        from cnnlab.training import fit

        return fit(self, x, y, epochs=epochs, batch_size=batch_size, validation_split=validation_split,
                   validation_data=validation_data, shuffle=shuffle, callbacks=callbacks, verbose=verbose,
                   seed=seed, augment=augment, doctor=doctor, resume_from=resume_from, checkpoint=checkpoint,
                   allow_change=allow_change)

    def evaluate(self, x, y, **kwargs):
        """``(loss, accuracy)`` on ``x``, ``y``; see ``cnnlab.training.evaluate``."""
        from cnnlab.training import evaluate

        return evaluate(self, x, y, **kwargs)

    def predict(self, x, **kwargs) -> np.ndarray:
        """Class probabilities (N, K), computed in batches; see ``cnnlab.training.predict``."""
        from cnnlab.training import predict

        return predict(self, x, **kwargs)

    def save(self, path, **kwargs):
        """Save architecture, weights (and optimizer/training state); see ``cnnlab.models.io.save_model``."""
        return save_model(self, path, **kwargs)

    def explain(self, input_shape: tuple[int, ...] | None = None) -> str:
        """Every layer's ``explain``, numbered, with the shapes flowing through.

        Example:
            >>> from cnnlab.models.zoo import ox_cnn
            >>> print(ox_cnn().explain().splitlines()[-1])
            Total: 26 parameters
        """
        shape = input_shape if input_shape is not None else self.input_shape
        shape = None if shape is None else tuple(int(d) for d in shape)
        lines = [f"Model '{self.name}'" + ("" if shape is None else f" on input {shape_text(shape)}") + ":"]
        for i, layer in enumerate(self.layers):
            lines.append(f"{i:3d}. " + layer.explain(shape).replace("\n", "\n     "))
            if shape is not None:
                shape = tuple(layer.output_shape(shape))
        lines.append(f"Total: {num(self.num_parameters())} parameters")
        return "\n".join(lines)

    def __repr__(self) -> str:
        inner = "\n".join(f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index):
        return self.layers[index]
