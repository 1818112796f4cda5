"""Old import path of initializers, kept working: the code lives in ``cnnlab.layers.initializers``.

Nothing inside cnnlab imports this module (the import-direction test checks it).
"""
from cnnlab.layers.initializers import *  # noqa: F401,F403
