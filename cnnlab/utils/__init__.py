"""The bottom of cnnlab: helpers every other package may use, importing nothing of cnnlab.

* ``validation``: argument and array checks whose errors name expected vs received.
* ``rng``: ``as_rng``, the one way a seed becomes a ``numpy.random.Generator``.
* ``files``: the atomic file writer, the umask, ``check_writable_folder``.
* ``formatting``: how pairs such as kernel sizes are printed and stored.
* ``argtypes``: value types for ``argparse`` (positive ints, fractions, ...).
"""
