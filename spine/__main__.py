"""``python -m spine``: the same as the ``spine`` command."""

import sys

from spine.cli import main

if __name__ == "__main__":
    sys.exit(main())
