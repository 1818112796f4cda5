"""Training: everything that runs a model over data and changes its weights.

* ``loop``: ``fit``, the training loop; ``config``: ``FitConfig``, the one place for its defaults.
* ``compile``: optimizer, loss and metrics; ``optim``, ``losses``: those objects.
* ``inference``: ``evaluate``, ``predict`` and ``probabilities``.
* ``data``: the checks of ``x``/``y``, augmentation; ``progress``: progress bar and Ctrl-C.
* ``callbacks``, ``checkpoints``, ``history``, ``doctor``: around the loop.
"""
from cnnlab.training.checkpoints import TrainingState, load_checkpoint, restore, save_checkpoint, save_training_state
from cnnlab.training.compile import compile_model
from cnnlab.training.config import FitConfig
from cnnlab.training.inference import evaluate, predict, probabilities
from cnnlab.training.loop import fit
from cnnlab.training.history import History

__all__ = ["FitConfig", "History", "TrainingState", "compile_model", "evaluate", "fit", "load_checkpoint", "predict",
           "probabilities", "restore", "save_checkpoint", "save_training_state"]
