"""Old import path of checkpoints, kept working: the code lives in ``cnnlab.training.checkpoints``.

Nothing inside cnnlab imports this module (the import-direction test checks it).
"""
from cnnlab.training.checkpoints import *  # noqa: F401,F403
