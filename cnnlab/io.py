"""Old import path of pickle-free save and load, kept working: the code lives in ``cnnlab.models.io``.

Nothing inside cnnlab imports this module (the import-direction test checks it).
"""
from cnnlab.models.io import *  # noqa: F401,F403
