"""``compile_model``: bind an optimizer, a loss and metrics to a model (Keras's ``compile``)."""
from __future__ import annotations

from cnnlab.training.losses import get_loss
from cnnlab.training.optim import get_optimizer

__all__ = ["METRICS", "compile_model", "require_compiled"]

METRICS = ("accuracy",)
_METRIC_ALIASES = {"accuracy": "accuracy", "acc": "accuracy"}


def compile_model(model, optimizer="adam", loss="cross_entropy", metrics=("accuracy",), **optimizer_kwargs):
    """Choose the optimizer, loss and metrics; binds the optimizer to ``model.parameters()``.

    Args:
        model: a ``Sequential``.
        optimizer: ``"sgd"``, ``"adam"``, ``"adamw"`` or an optimizer object.
        loss: ``"cross_entropy"`` or a loss object with ``forward(logits, labels)`` and ``backward()``.
        metrics: names of the metrics to report; ``"accuracy"`` (alias ``"acc"``) is available.
        **optimizer_kwargs: optimizer settings, e.g. ``lr=1e-3``, ``momentum=0.9``.

    Returns:
        the model, with ``model.optimizer``, ``model.loss_fn`` and ``model.metrics`` set.

    Raises:
        ValueError / TypeError: unknown names or settings (nothing is changed then).
    """
    if isinstance(metrics, str):
        metrics = (metrics,)
    try:
        metrics = list(metrics or ())
    except TypeError:
        raise TypeError(f"metrics must be a list of names such as ['accuracy']; received {metrics!r}.") from None
    names = []
    for m in metrics:
        if not isinstance(m, str) or m.lower() not in _METRIC_ALIASES:
            raise ValueError(f"unknown metric {m!r}; available metrics: {', '.join(METRICS)}.")
        names.append(_METRIC_ALIASES[m.lower()])
    params = model.parameters()
    if not params:
        raise ValueError("this model has no trainable parameters; add a layer with weights (Conv2d, Dense).")
    opt = get_optimizer(optimizer, **optimizer_kwargs)
    loss_fn = get_loss(loss)
    opt.set_parameters(params)
    model.optimizer, model.loss_fn, model.metrics = opt, loss_fn, names
    return model


def require_compiled(model):
    opt, loss_fn = getattr(model, "optimizer", None), getattr(model, "loss_fn", None)
    if opt is None or loss_fn is None:
        raise RuntimeError("the model is not compiled: call model.compile(optimizer='adam', lr=1e-3) "
                           "(or cnnlab.training.compile_model) before fit.")
    return opt, loss_fn
