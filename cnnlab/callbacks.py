"""Old import path of callbacks and learning-rate schedules, kept working: the code lives in
``cnnlab.training.callbacks`` and ``cnnlab.training.schedules``.

Nothing inside cnnlab imports this module (the import-direction test checks it).
"""
from cnnlab.training.callbacks import *  # noqa: F401,F403
from cnnlab.training.schedules import *  # noqa: F401,F403
