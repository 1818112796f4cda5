"""``python -m cnnlab``: the same command line as the ``cnnlab`` script (see ``cnnlab.cli``)."""
import sys

from cnnlab.cli import main

if __name__ == "__main__":
    sys.exit(main())
