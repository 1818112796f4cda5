"""Old import path of History, kept working: the code lives in ``cnnlab.training.history``.

Nothing inside cnnlab imports this module (the import-direction test checks it).
"""
from cnnlab.training.history import *  # noqa: F401,F403
