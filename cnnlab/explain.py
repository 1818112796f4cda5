"""Old import path of the explanations, kept working: the code lives in ``cnnlab.lab.explain``.

Nothing inside cnnlab imports this module (the import-direction test checks it).
"""
from cnnlab.lab.explain import *  # noqa: F401,F403
