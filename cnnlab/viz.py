"""Old import path of the pictures, kept working: the code lives in ``cnnlab.lab.viz``.

Nothing inside cnnlab imports this module (the import-direction test checks it).
"""
from cnnlab.lab.viz import *  # noqa: F401,F403
