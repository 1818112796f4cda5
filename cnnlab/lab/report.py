"""What a trained model shows: ``visualize`` (one image through the model, as pictures) and
``write_report`` (a self-contained HTML training report)."""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from cnnlab.lab import viz
from cnnlab.training.inference import probabilities
from cnnlab.utils.files import atomic_write_text

__all__ = ["visualize", "write_report", "format_value", "probabilities_of", "out_folder", "save_figure"]


def out_folder(out_dir) -> Path:
    """``out_dir`` as a Path, created if missing."""
    path = Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_figure(fig, path: Path, files: list) -> None:
    """Write ``fig`` to ``path`` and note the file in ``files``."""
    viz.finish(fig, path)
    files.append(str(path))


# ----- a trained model, one image ------------------------------------------------------------------
def probabilities_of(model, x, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (N, K), float64, from the model's forward pass (softmax unless it ends in Softmax)."""
    outs = [model.forward(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)]
    return probabilities(model, np.concatenate(outs).astype(np.float64))


def visualize(model, image, out_dir, *, class_names=None, label: int | None = None) -> dict:
    """What ``model`` sees in ``image``: feature maps, first-layer filters, class probabilities
    and the saliency map, written into ``out_dir``.

    Args:
        model: a ``Sequential`` with a known ``input_shape``.
        image: one input (C, H, W) (or (H, W) for one channel) of the model's dtype, scaled
            as the model was trained.
        out_dir: destination folder (created if missing).
        class_names: names of the classes.
        label: the true class, if known.

    Returns:
        ``{"numbers": {"probabilities": [...], "predicted": k}, "files": [...]}``.
    """
    out = out_folder(out_dir)
    x = np.asarray(image)
    if x.ndim == 2:
        x = x[None]  # (1, H, W)
    probs = viz.class_probabilities(model, x)
    files: list = []
    save_figure(viz.feature_maps(model, x), out / "feature_maps.png", files)
    save_figure(viz.filters_figure(model), out / "filters.png", files)
    save_figure(viz.probabilities_figure(probs, class_names=class_names, true_label=label,
                                   image=x[0] if x.shape[0] == 1 else x.mean(axis=0)), out / "probabilities.png", files)
    save_figure(viz.saliency_figure(model, x, class_names=class_names), out / "saliency.png", files)
    return {"numbers": {"probabilities": probs.tolist(), "predicted": int(np.argmax(probs))}, "files": files}


# ----- HTML report ---------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{border-bottom:2px solid #444;padding-bottom:.2em} h2{margin-top:1.8em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #bbb;padding:.25em .6em;text-align:left}
th{background:#f0f0f0} td{overflow-wrap:anywhere}
pre{background:#f6f6f6;padding:.8em;font-size:.85em;white-space:pre-wrap;overflow-wrap:anywhere}
img{max-width:100%;height:auto;border:1px solid #ddd;margin:.4em 0} .big{font-size:1.3em;font-weight:bold}
"""


def _img_tag(fig, alt: str) -> str:
    data = base64.b64encode(viz.png_bytes(fig)).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def format_value(value) -> str:
    """A setting or metric for a reader: 4 significant digits, exponent form for tiny or huge
    floats (3.81e-05, never 0.0000), ints and text as they are.

    >>> format_value(3.8106e-05), format_value(0.99334), format_value(0.001), format_value(64), format_value(0.0)
    ('3.811e-05', '0.9933', '0.001', '64', '0')
    """
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _table(rows) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(format_value(v))}</td></tr>"
                    for k, v in rows)
    return f"<table>{cells}</table>"


def write_report(out_dir, model, history, x_test, y_test, settings: dict | None = None, *, class_names=None,
                 filename: str = "report.html", title: str | None = None) -> Path:
    """A self-contained HTML report of a training run (images embedded, inline CSS, no links).

    Sections: run settings, test accuracy, model summary and plain-language explanation,
    training curves, confusion matrix, prediction grid, most confident mistakes, learned
    filters, feature maps and saliency of the first test image.

    Args:
        out_dir: destination folder (created if missing).
        model: the trained ``Sequential``.
        history: its ``History`` (or a dict of metric lists).
        x_test: test inputs (N, C, H, W) of the model's dtype; y_test: labels (N,).
        settings: run settings to list (epochs, batch size, lr, seed, ...).
        class_names: names of the classes.
        filename: report file name.
        title: page title.

    Returns:
        the path of the written report.
    """
    out = out_folder(out_dir)
    x_test = np.asarray(x_test)
    y_test = np.asarray(y_test)
    if x_test.shape[0] != y_test.shape[0] or x_test.shape[0] == 0:
        raise ValueError(f"x_test and y_test must hold the same, nonzero number of samples; received "
                         f"{x_test.shape[0]} and {y_test.shape[0]}.")
    probs = probabilities_of(model, x_test)
    pred = probs.argmax(axis=1)
    acc = float(np.mean(pred == y_test))
    k = probs.shape[1]
    title = title or f"cnnlab training report: {getattr(model, 'name', 'model')}"
    sections = [f"<h1>{html.escape(title)}</h1>",
                f'<p class="big">Test accuracy: {acc:.2%} ({int(np.sum(pred == y_test))} of {len(y_test)})</p>']
    settings = dict(settings or {})
    if settings:
        sections += ["<h2>Run settings</h2>", _table(settings.items())]
    sections += ["<h2>Model</h2>", f"<pre>{html.escape(model.summary(print_fn=None))}</pre>",
                 f"<pre>{html.escape(model.explain())}</pre>"]
    h = viz.history_dict(history)
    if h.get("loss"):
        sections += ["<h2>Training curves</h2>", _img_tag(viz.training_curves(h), "training curves")]
        last = [(key, vals[-1]) for key, vals in h.items() if vals]
        sections.append(_table(last))
    sections += ["<h2>Confusion matrix</h2>",
                 _img_tag(viz.confusion_matrix_figure(y_test, pred, class_names=class_names, num_classes=k),
                          "confusion matrix"),
                 "<h2>Predictions</h2>",
                 _img_tag(viz.prediction_grid(x_test, y_test, probs, class_names=class_names, n=24), "prediction grid"),
                 "<h2>Most confident mistakes</h2>",
                 _img_tag(viz.most_confused_figure(x_test, y_test, probs, class_names=class_names, n=8),
                          "most confused examples")]
    try:
        viz.first_conv_index(model)
        sections += ["<h2>Learned filters (first convolution)</h2>", _img_tag(viz.filters_figure(model), "filters")]
    except ValueError:
        pass
    if viz.feature_map_layers(model):
        sections += [f"<h2>Feature maps of test image 0 (label {html.escape(str(y_test[0]))})</h2>",
                     _img_tag(viz.feature_maps(model, x_test[0]), "feature maps")]
    sections += ["<h2>Saliency of test image 0</h2>",
                 _img_tag(viz.saliency_figure(model, x_test[0], class_names=class_names), "saliency")]
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(sections) + "\n</body></html>\n")
    page = page.encode("utf-8", "surrogateescape").decode("utf-8", "replace")  # non-UTF-8 names: shown as U+FFFD
    path = out / filename
    atomic_write_text(path, page)
    return path
