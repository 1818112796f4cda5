"""The two things every layer is made of: ``Parameter`` (an array and its gradient) and
``Layer`` (hyperparameters, parameters, buffers, the latest cache, and an op to call).
"""
from __future__ import annotations

import numpy as np

from cnnlab.layers.describe import num, shapes_of
from cnnlab.utils.rng import as_rng  # noqa: F401  (layers take rng= through it)

DEFAULT_DTYPE = np.float32


class Parameter:
    """A trainable array with its gradient.

    Attributes:
        data: the values, any shape.
        grad: d(loss)/d(data), same shape and dtype, or None before the first backward.
    """

    def __init__(self, data: np.ndarray, name: str = ""):
        self.data = data
        self.grad: np.ndarray | None = None
        self.name = name

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def size(self) -> int:
        return self.data.size

    def zero_grad(self) -> None:
        self.grad = None

    def __repr__(self) -> str:
        return f"Parameter({self.name or '?'}, shape={self.data.shape}, dtype={self.data.dtype})"


class Layer:
    """Base class: a layer holds settings, parameters, buffers and the cache of its last forward.

    Subclasses implement ``forward``, ``backward``, ``output_shape`` and ``get_config``;
    layers with parameters also implement ``reset_parameters(rng)``.

    Conventions:
        * ``forward(x, *, training=False, requires_grad=None)``: inference is the default.
          The cache for ``backward`` is kept when ``requires_grad`` (default: ``training``),
          so prediction never holds activations; saliency maps pass ``requires_grad=True``.
        * ``backward(dout)`` returns dL/dx and *assigns* (not accumulates) each ``param.grad``.
        * ``output_shape(input_shape)`` works on per-sample shapes (no batch axis) and checks
          them, so a model can be built and summarized before it sees data.
    """

    #: names of the Parameter attributes, in order (e.g. ("weight", "bias"))
    param_names: tuple[str, ...] = ()
    #: names of non-trainable array attributes saved with the model (e.g. running_mean)
    buffer_names: tuple[str, ...] = ()
    # ----- roles (what the training loop, the doctor and the lab ask a layer, instead of its name)
    #: the output is class probabilities (Softmax): ``predict`` applies no softmax after it
    outputs_probabilities: bool = False
    #: the output is a stack of feature maps worth drawing (convolution and pooling)
    produces_feature_maps: bool = False
    #: an elementwise activation (ReLU, LeakyReLU, Sigmoid, Tanh)
    is_activation: bool = False
    #: each output value depends on the input value at the same position only (activations, batch
    #: norm at inference, dropout): an explanation can look straight through it
    elementwise: bool = False
    #: units that output 0 for every negative input and then get no gradient (ReLU): the doctor
    #: counts how many of them never fire
    can_die: bool = False
    #: training mode normalizes with the batch's own statistics (batch norm): ``fit`` refuses a
    #: run whose batches would give it one value per channel
    needs_batch_statistics: bool = False
    #: the output is still a (C, H, W) map aligned with the input's positions (receptive fields
    #: stop at the first layer where it is not: Flatten, Dense)
    keeps_spatial_layout: bool = True

    def __init__(self):
        self._cache = None
        self._dout_spec = None
        self.name: str | None = None

    # ----- computation -------------------------------------------------------------
    def forward(self, x: np.ndarray, *, training: bool = False, requires_grad: bool | None = None) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x: np.ndarray, *, training: bool = False, requires_grad: bool | None = None) -> np.ndarray:
        return self.forward(x, training=training, requires_grad=requires_grad)

    def keeps_cache(self, training: bool, requires_grad: bool | None) -> bool:
        """Whether a forward with these flags keeps the cache for ``backward``."""
        return training if requires_grad is None else bool(requires_grad)

    #: the name layers written before ``keeps_cache`` use (custom layers, the exercises)
    _keep = keeps_cache

    def backward_params(self, dout: np.ndarray) -> None:
        """Set the parameter gradients; the input gradient is not needed (a first layer's input
        is data). Layers that can skip computing it (Conv2d) override this."""
        self.backward(dout)

    def _require_cache(self):
        if self._cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() called before a forward pass that keeps a cache; "
                f"call forward(x, training=True) (or requires_grad=True) first."
            )
        return self._cache

    def _set_cache(self, cache, out: np.ndarray, training: bool, requires_grad: bool | None) -> None:
        """Keep ``cache`` (and the shape and dtype backward's ``dout`` must have) when asked to."""
        keep = self.keeps_cache(training, requires_grad)
        self._cache = cache if keep else None
        self._dout_spec = (out.shape, out.dtype) if keep else None

    def _check_dout(self, dout) -> None:
        """Check ``dout`` matches the last kept output, before any work (after _set_cache)."""
        self._require_cache()
        shape, dtype = self._dout_spec
        name = type(self).__name__
        if not isinstance(dout, np.ndarray):
            raise TypeError(f"{name}.backward expected dout to be a numpy.ndarray; received {type(dout).__name__}.")
        if dout.shape != shape:
            raise ValueError(f"{name}.backward expected dout of shape {shape} (the shape of its last output); "
                             f"received {dout.shape}.")
        if dout.dtype != dtype:
            raise TypeError(f"{name}.backward expected dout of dtype {dtype} (the dtype of its last output); "
                            f"received {dout.dtype}.")

    def clear_cache(self) -> None:
        self._cache = None

    # ----- shapes ------------------------------------------------------------------
    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Per-sample output shape for a per-sample input shape (no batch axis)."""
        raise NotImplementedError

    # ----- parameters and state ----------------------------------------------------
    def parameters(self) -> list[Parameter]:
        return [getattr(self, n) for n in self.param_names if getattr(self, n, None) is not None]

    def buffers(self) -> dict[str, np.ndarray]:
        return {n: getattr(self, n) for n in self.buffer_names}

    def num_parameters(self) -> int:
        return int(sum(p.size for p in self.parameters()))

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameters and buffers by attribute name (arrays are not copied)."""
        state = {n: getattr(self, n).data for n in self.param_names if getattr(self, n, None) is not None}
        state.update(self.buffers())
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Set parameters and buffers from ``state``; checks names, shapes and dtypes first."""
        current = self.state_dict()
        missing, extra = set(current) - set(state), set(state) - set(current)
        if missing or extra:
            raise ValueError(
                f"{type(self).__name__} state mismatch: missing {sorted(missing)}, unexpected {sorted(extra)}."
            )
        for key, value in state.items():
            ref = current[key]
            if not isinstance(value, np.ndarray) or value.shape != ref.shape or value.dtype != ref.dtype:
                got = f"{value.shape} {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
                raise ValueError(
                    f"{type(self).__name__}.{key} expected an array of shape {ref.shape} and dtype "
                    f"{ref.dtype}; received {got}."
                )
        for key, value in state.items():
            if key in self.param_names:
                getattr(self, key).data = value.copy()
            else:
                setattr(self, key, value.copy())

    @property
    def dtype(self):
        """dtype of the parameters (None for parameter-free layers)."""
        arrays = list(self.state_dict().values())
        return arrays[0].dtype if arrays else None

    def astype(self, dtype) -> "Layer":
        """Convert parameters and buffers to ``dtype`` in place (float32 or float64); returns self."""
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be float32 or float64; received {dtype}.")
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        for n in self.buffer_names:
            setattr(self, n, getattr(self, n).astype(dtype))
        self._cache = None
        return self

    # ----- config and printing -----------------------------------------------------
    def get_config(self) -> dict:
        """JSON-serializable constructor arguments (used by save/load)."""
        return {}

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def window(self, input_shape: tuple[int, ...] | None = None):
        """``(kernel, stride, padding)`` pairs of the window each output value sees, or None for a
        layer that works on each position alone (activations, batch norm, dropout)."""
        return None

    def explain(self, input_shape: tuple[int, ...] | None = None) -> str:
        """A plain-language description of what the layer does, numbers filled in; subclasses
        write their own (see ``cnnlab.layers.describe`` for the shared wording)."""
        s = shapes_of(self, input_shape)
        return f"{type(self).__name__}: {s.shape_in}{s.arrow}; {num(self.num_parameters())} parameters"
