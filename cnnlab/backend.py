"""Old import path of the engine switch, kept working: the code lives in ``cnnlab.engines.runtime``.

Nothing inside cnnlab imports this module (the import-direction test checks it).
"""
from cnnlab.engines.runtime import *  # noqa: F401,F403
