"""Old import path of losses, kept working: the code lives in ``cnnlab.training.losses``.

Nothing inside cnnlab imports this module (the import-direction test checks it).
"""
from cnnlab.training.losses import *  # noqa: F401,F403
