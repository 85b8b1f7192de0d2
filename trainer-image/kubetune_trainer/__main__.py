"""Entry point: `python -m kubetune_trainer --config /etc/kubetune/config.json`."""

import sys

from .cli import main

sys.exit(main())
