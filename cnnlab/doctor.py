"""Old import path of the training doctor, kept working: the code lives in ``cnnlab.training.doctor``.

Nothing inside cnnlab imports this module (the import-direction test checks it).
"""
from cnnlab.training.doctor import *  # noqa: F401,F403
