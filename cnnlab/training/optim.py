"""Optimizers with ``torch.optim``'s exact update rules: SGD (momentum, Nesterov, L2 weight
decay), Adam and AdamW (decoupled weight decay).

An optimizer updates a list of ``Parameter`` objects in place from their ``.grad``::

    opt = Adam(model.parameters(), lr=1e-3)   # or Adam(lr=1e-3) and set_parameters(...) later
    opt.zero_grad(); ...backward...; opt.step()

``lr`` may be changed between steps (learning-rate schedules). ``state_dict()`` holds only
JSON-able scalars and NumPy arrays, for checkpoints.

Example:
    >>> from cnnlab.layers.base import Parameter
    >>> w = Parameter(np.array([1.0, -2.0]))
    >>> opt = SGD([w], lr=0.1)
    >>> w.grad = np.array([0.5, 0.5])
    >>> opt.step()
    >>> w.data.tolist()
    [0.95, -2.05]
    >>> get_optimizer("adam", lr=0.01)
    Adam(lr=0.01)
"""
from __future__ import annotations

import inspect
import math
from numbers import Integral

import numpy as np

from cnnlab.engines import numba_ops
from cnnlab.utils.validation import check_real
from cnnlab.layers.base import Parameter


class Optimizer:
    """Base class: holds the parameters, the per-parameter state and the step counter.

    Subclasses set ``name`` and ``_state_keys`` and implement ``_update`` and ``get_config``.
    """

    name = ""
    #: names of the per-parameter state arrays (e.g. ("exp_avg", "exp_avg_sq"))
    _state_keys: tuple[str, ...] = ()
    #: names of the per-parameter integer counters (Adam's per-parameter step)
    _counter_keys: tuple[str, ...] = ()

    def __init__(self, params=None, lr: float = 0.01):
        self.lr = lr
        self.params: list[Parameter] | None = None
        self.state: list[dict] = []
        self.step_count = 0
        if params is not None:
            self.set_parameters(params)

    # ----- hyperparameters ---------------------------------------------------------
    @property
    def lr(self) -> float:
        """Learning rate; may be changed between steps (checked to be > 0)."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = check_real(value, f"{type(self).__name__} lr", 0.0, low_inclusive=False)

    def get_config(self) -> dict:
        """JSON-serializable constructor arguments (without the parameters)."""
        return {"lr": self.lr}

    def __repr__(self) -> str:
        defaults = {k: v.default for k, v in inspect.signature(type(self).__init__).parameters.items()}
        config = self.get_config()
        shown = [f"{k}={v!r}" for k, v in config.items()
                 if k == "lr" or (v != defaults.get(k) and not (k == "betas" and tuple(v) == defaults.get(k)))]
        return f"{type(self).__name__}({', '.join(shown)})"

    # ----- parameters --------------------------------------------------------------
    def set_parameters(self, params) -> None:
        """Attach the parameters to update (resets the optimizer state and step counter).

        Raises:
            TypeError: something other than an iterable of ``Parameter``.
            ValueError: an empty list or the same Parameter twice.
        """
        name = type(self).__name__
        if callable(getattr(params, "parameters", None)):
            raise TypeError(f"{name} expected a list of Parameters; received a {type(params).__name__}. "
                            f"Pass model.parameters().")
        if isinstance(params, (Parameter, np.ndarray)):
            raise TypeError(f"{name} expected a list of Parameters; received a single "
                            f"{type(params).__name__}. Wrap it in a list: [param].")
        try:
            params = list(params)
        except TypeError:
            raise TypeError(f"{name} expected a list of Parameters; received {type(params).__name__}.") from None
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(f"{name} parameter {i} must be a cnnlab Parameter; received "
                                f"{type(p).__name__}. Wrap arrays as Parameter(array).")
        if not params:
            raise ValueError(f"{name} received an empty parameter list; the model has nothing to train.")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name} received the same Parameter more than once; each must appear once.")
        self.params = params
        self.state = [{} for _ in params]
        self.step_count = 0

    def _require_params(self) -> list[Parameter]:
        if self.params is None:
            raise RuntimeError(
                f"{type(self).__name__} has no parameters: pass them to the constructor or call "
                f"set_parameters(model.parameters()) first (compiling a model does this)."
            )
        return self.params

    def zero_grad(self) -> None:
        """Set every parameter's ``grad`` to None."""
        for p in self._require_params():
            p.grad = None

    # ----- the update --------------------------------------------------------------
    def step(self) -> None:
        """Update every parameter that has a gradient (those with ``grad is None`` are skipped).

        Raises:
            RuntimeError: no parameters attached.
            ValueError / TypeError: a gradient whose shape or dtype differs from its parameter's
                (checked for all parameters before any is updated).
        """
        params = self._require_params()
        for i, p in enumerate(params):
            g = p.grad
            if g is None:
                continue
            if not isinstance(g, np.ndarray) or g.shape != p.data.shape:
                got = g.shape if isinstance(g, np.ndarray) else type(g).__name__
                raise ValueError(f"{type(self).__name__}: parameter {i} ({p.name or '?'}) has shape "
                                 f"{p.data.shape} but its grad has shape {got}.")
            if g.dtype != p.data.dtype:
                raise TypeError(f"{type(self).__name__}: parameter {i} ({p.name or '?'}) is {p.data.dtype} "
                                f"but its grad is {g.dtype}; cnnlab never changes dtypes silently.")
        for p, st in zip(params, self.state):
            if p.grad is not None:
                self._update(p, p.grad, st)
        self.step_count += 1

    def _update(self, p: Parameter, g: np.ndarray, state: dict) -> None:
        raise NotImplementedError

    # ----- checkpoints -------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"name", "config", "step", "buffers": {"<i>.<key>": array}, "counters": {"<i>.<key>": int}}``.

        Arrays are copies; every leaf is a JSON-able scalar or a NumPy array.
        """
        buffers, counters = {}, {}
        for i, st in enumerate(self.state):
            for key, value in st.items():
                if isinstance(value, np.ndarray):
                    buffers[f"{i}.{key}"] = value.copy()
                else:
                    counters[f"{i}.{key}"] = int(value)
        return {"name": self.name, "config": self.get_config(), "step": int(self.step_count),
                "buffers": buffers, "counters": counters}

    def load_state_dict(self, state: dict) -> None:
        """Restore hyperparameters, step counter and per-parameter state from ``state_dict()``.

        Everything is checked (name, config, keys, shapes, dtypes) before anything changes.
        """
        params = self._require_params()
        name = type(self).__name__
        if not isinstance(state, dict) or not {"name", "config", "step", "buffers"} <= set(state):
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"{name}.load_state_dict expected a dict with keys name, config, step, "
                             f"buffers (from state_dict()); received {got}.")
        if state["name"] != self.name:
            raise ValueError(f"{name}.load_state_dict received the state of a {state['name']!r} "
                             f"optimizer; expected {self.name!r}.")
        for part in ("config", "buffers", "counters"):
            if part in state and not isinstance(state[part], dict):
                raise ValueError(f"{name}.load_state_dict expected state[{part!r}] to be a dict; "
                                 f"received {type(state[part]).__name__}.")
        fresh = type(self)(None, **state["config"])  # validates the hyperparameters
        step = state["step"]
        if not isinstance(step, Integral) or isinstance(step, bool) or step < 0:
            raise ValueError(f"{name} state step must be an int >= 0; received {step!r}.")
        new_state: list[dict] = [{} for _ in params]

        def target(key: str) -> tuple[int, str]:
            idx, _, sub = key.partition(".")
            if not idx.isdigit() or int(idx) >= len(params):
                raise ValueError(f"{name} state key {key!r} does not name one of the "
                                 f"{len(params)} parameters (expected '<index>.<name>').")
            return int(idx), sub

        for key, arr in state["buffers"].items():
            i, sub = target(key)
            ref = params[i].data
            if sub not in self._state_keys:
                raise ValueError(f"{name} state key {key!r}: unknown buffer {sub!r}; "
                                 f"expected one of {self._state_keys}.")
            if not isinstance(arr, np.ndarray) or arr.shape != ref.shape or arr.dtype != ref.dtype:
                got = f"{arr.shape} {arr.dtype}" if isinstance(arr, np.ndarray) else type(arr).__name__
                raise ValueError(f"{name} state {key!r} expected an array of shape {ref.shape} and dtype "
                                 f"{ref.dtype} (parameter {i}); received {got}.")
            new_state[i][sub] = arr.copy()
        for key, value in state.get("counters", {}).items():
            i, sub = target(key)
            if sub not in self._counter_keys:
                raise ValueError(f"{name} state key {key!r}: unknown counter {sub!r}; "
                                 f"expected one of {self._counter_keys}.")
            if not isinstance(value, Integral) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} state counter {key!r} must be an int >= 0; received {value!r}.")
            new_state[i][sub] = int(value)
        # all checked: commit
        self.__dict__.update({k: v for k, v in fresh.__dict__.items() if k not in ("params", "state", "step_count")})
        self.state = new_state
        self.step_count = int(step)


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD`` (dampening 0)::

        g = grad + weight_decay * w
        buf = g (first step), then buf = momentum * buf + g
        g = g + momentum * buf  (nesterov)  or  g = buf
        w = w - lr * g

    Args:
        params: list of Parameters, or None to attach later with ``set_parameters``.
        lr: learning rate (> 0).
        momentum: momentum factor in [0, 1).
        nesterov: Nesterov momentum (needs momentum > 0).
        weight_decay: L2 penalty coefficient (>= 0), added to the gradient.
    """

    name = "sgd"
    _state_keys = ("momentum_buffer",)

    def __init__(self, params=None, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0):
        self.momentum = check_real(momentum, "SGD momentum", 0.0, 1.0, high_inclusive=False)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"SGD nesterov must be True or False; received {nesterov!r}.")
        if nesterov and self.momentum == 0:
            raise ValueError("SGD nesterov=True needs momentum > 0; received momentum=0.0. "
                             "Try SGD(..., momentum=0.9, nesterov=True).")
        self.nesterov = bool(nesterov)
        self.weight_decay = check_real(weight_decay, "SGD weight_decay", 0.0)
        super().__init__(params, lr)

    def _update(self, p: Parameter, g: np.ndarray, state: dict) -> None:
        first = "momentum_buffer" not in state
        if self.momentum != 0 and first:
            state["momentum_buffer"] = np.empty_like(p.data)
        # Numba engine: the whole update in one compiled pass (the same bits as the lines below)
        if numba_ops.sgd_update(p.data, g, state.get("momentum_buffer", g), lr=self.lr, momentum=self.momentum,
                                weight_decay=self.weight_decay, nesterov=self.nesterov, first=first):
            return
        if self.weight_decay != 0:
            g = g + self.weight_decay * p.data
        if self.momentum != 0:
            buf = state["momentum_buffer"]
            if first:
                buf[...] = g  # torch starts the buffer at the first gradient
            else:
                buf *= self.momentum
                buf += g
            g = g + self.momentum * buf if self.nesterov else buf
        p.data -= self.lr * g

    def get_config(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), as ``torch.optim.Adam``, with bias correction::

        g = grad + weight_decay * w          (L2 penalty; AdamW decays w directly instead)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        w = w - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    ``t`` counts the steps in which this parameter had a gradient.

    Args:
        params: list of Parameters, or None to attach later with ``set_parameters``.
        lr: learning rate (> 0).
        betas: decay rates (beta1, beta2) of the moment averages, each in [0, 1).
        eps: added to the denominator (> 0).
        weight_decay: L2 penalty coefficient (>= 0).
    """

    name = "adam"
    _state_keys = ("exp_avg", "exp_avg_sq")
    _counter_keys = ("step",)
    _decoupled = False

    def __init__(self, params=None, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        cls = type(self).__name__
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{cls} betas must be a pair (beta1, beta2); received {betas!r}.")
        self.betas = (check_real(betas[0], f"{cls} beta1", 0.0, 1.0, high_inclusive=False),
                      check_real(betas[1], f"{cls} beta2", 0.0, 1.0, high_inclusive=False))
        self.eps = check_real(eps, f"{cls} eps", 0.0, low_inclusive=False)
        self.weight_decay = check_real(weight_decay, f"{cls} weight_decay", 0.0)
        super().__init__(params, lr)

    def _update(self, p: Parameter, g: np.ndarray, state: dict) -> None:
        beta1, beta2 = self.betas
        lr = self.lr
        t = state["step"] = state.get("step", 0) + 1
        if "exp_avg" not in state:
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        # Numba engine: the whole update in one compiled pass (the same bits as the lines below)
        if numba_ops.adam_update(p.data, g, m, v, lr=lr, beta1=beta1, beta2=beta2, eps=self.eps, t=t,
                                 weight_decay=self.weight_decay, decoupled=self._decoupled):
            return
        if self.weight_decay != 0:
            if self._decoupled:
                p.data *= 1 - lr * self.weight_decay
            else:
                g = g + self.weight_decay * p.data
        # in place, one scratch array: the same operations in the same order (the same bits) as
        # m += (1 - beta1) * (g - m); v += (1 - beta2) * g * g; p -= step * (m / denom),
        # without five temporaries of the parameter's size
        tmp = np.subtract(g, m)
        tmp *= 1 - beta1
        m += tmp  # torch's lerp, same rounding
        v *= beta2
        np.multiply(g, 1 - beta2, out=tmp)
        tmp *= g
        v += tmp
        step_size = lr / (1 - beta1**t)
        np.sqrt(v, out=tmp)
        tmp /= math.sqrt(1 - beta2**t)
        tmp += self.eps  # denom
        np.divide(m, tmp, out=tmp)
        tmp *= step_size
        p.data -= tmp

    def get_config(self) -> dict:
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps, "weight_decay": self.weight_decay}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``:
    each step first shrinks the weights, ``w = w * (1 - lr * weight_decay)``, then applies the
    Adam update to the plain gradient.

    Args:
        params, lr, betas, eps: as Adam.
        weight_decay: decoupled decay coefficient (>= 0), 0.01 by default as in PyTorch.
    """

    name = "adamw"
    _decoupled = True

    def __init__(self, params=None, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01):
        super().__init__(params, lr, betas, eps, weight_decay)


#: name -> optimizer class
OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def get_optimizer(name_or_optimizer, **kwargs) -> Optimizer:
    """Build an optimizer from a name (``"sgd"``, ``"adam"``, ``"adamw"``) and keyword settings,
    or return an optimizer instance unchanged.

    Raises:
        ValueError: unknown name (the message lists the known ones).
        TypeError: settings the optimizer does not have, or settings given with an instance.
    """
    if isinstance(name_or_optimizer, Optimizer):
        if kwargs:
            raise TypeError(f"settings {sorted(kwargs)} apply only when naming an optimizer; "
                            f"received an {type(name_or_optimizer).__name__} instance. Set them on it directly.")
        return name_or_optimizer
    if not isinstance(name_or_optimizer, str):
        raise TypeError(f"optimizer must be a name ({', '.join(OPTIMIZERS)}) or an Optimizer; "
                        f"received {type(name_or_optimizer).__name__}.")
    key = name_or_optimizer.lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name_or_optimizer!r}; known optimizers: {', '.join(OPTIMIZERS)}.")
    cls = OPTIMIZERS[key]
    allowed = [k for k in inspect.signature(cls.__init__).parameters if k != "self"]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError(f"{cls.__name__} has no setting {', '.join(map(repr, unknown))}; its settings "
                        f"are {', '.join(allowed)}.")
    return cls(**kwargs)
