"""Old import path of callbacks, kept working: the code lives in ``cnnlab.training.callbacks``.

Nothing inside cnnlab imports this module (the import-direction test checks it).
"""
from cnnlab.training.callbacks import *  # noqa: F401,F403
