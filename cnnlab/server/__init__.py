"""``cnnlab lab``: the learning lab in the browser, served by Starlette on 127.0.0.1.

One module per job:
    * ``app``: the Starlette application and its routes (:func:`create_app`).
    * ``security``: refuses requests whose ``Host`` or ``Origin`` is not the server's own.
    * ``validation``: reading and checking request bodies; :class:`BadRequest` -> 4xx JSON.
    * ``encode``: arrays as JSON (shape, dtype and base64 bytes).
    * ``inference``: the Draw, Why and Model pages' numbers, from cnnlab's own code.
    * ``training_worker``: one training run at a time in a worker thread, with live snapshots.
    * ``command``: the ``cnnlab lab`` command.

The page (``static/``) is plain HTML, CSS and JavaScript modules: it draws what the server
computes and never re-implements the maths.
"""
from cnnlab.server.app import create_app

__all__ = ["create_app"]
