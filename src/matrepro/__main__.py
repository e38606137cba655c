"""``python -m matrepro`` = the ``matrepro`` command (matrepro.cli)."""
import sys

from .cli import main

sys.exit(main())
