"""``python -m vpc_requests``: the ``vpc-requests`` command line."""
import sys

from ._cli.cli import main

sys.exit(main())
