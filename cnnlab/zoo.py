"""Old import path of the model zoo, kept working: the code lives in ``cnnlab.models.zoo``.

Nothing inside cnnlab imports this module (the import-direction test checks it).
"""
from cnnlab.models.zoo import *  # noqa: F401,F403
