"""Old import path of optimizers, kept working: the code lives in ``cnnlab.training.optim``.

Nothing inside cnnlab imports this module (the import-direction test checks it).
"""
from cnnlab.training.optim import *  # noqa: F401,F403
